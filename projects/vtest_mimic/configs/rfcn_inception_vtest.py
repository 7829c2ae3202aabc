# R-FCN teacher of the built-in benchmark's two-stage mimic (paper Sec. 3.4, Table 9): the
# full-width Inception R-FCN on the full-size frames, fine-tuned (stage-2 recipe: RPN at 1/10 lr,
# new R-FCN layers random) from the benchmark's Inception RPN teacher; the study run sets the
# stage-1 checkpoint. Anchors as ./rpn_inception_vtest.py.
_base_ = [
    '../../../configs/_base_/models/rfcn_inception.py',
    './_base_/datasets/vtest.py',
    './_base_/schedules/vtest.py',
    '../../../configs/_base_/default_runtime.py',
]
stage1_ckpt = 'work_dirs/mimic_demo/teacher/best.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    rpn_head=dict(
        anchor_generator=dict(scales=[2, 4, 8]),
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
