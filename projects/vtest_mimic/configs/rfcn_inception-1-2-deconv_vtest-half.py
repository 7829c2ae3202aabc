# Stage 2 of the built-in benchmark's cross-scale block (paper Sec. 3.3, Table 6, at half input
# as Table 10): the 1/2-Inception R-FCN on the frames at half size with the x2 deconv neck
# (stride 8), backbone + deconv + RPN initialised from a stage-1 RPN student (mimic or scratch:
# the study run sets stage1_ckpt; a distiller checkpoint's "student." entries are used),
# ground truth only; new R-FCN layers random, RPN at 1/10 lr, 7x7 PS RoI bins.
_base_ = './rfcn_inception_vtest.py'
stage1_ckpt = 'work_dirs/mimic_demo/seed0/xs-mimic-1-2/iter_600.pth'
model = dict(
    data_preprocessor=dict(type='ScaledInputDataPreprocessor', input_scale=0.5),
    backbone=dict(
        widen_factor=0.5,
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    neck=dict(
        _delete_=True, type='Deconv2xNeck', in_channels=264, out_channels=264,
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='neck.')),
    rpn_head=dict(
        in_channels=264, feat_channels=256,
        anchor_generator=dict(scales=[2, 4, 8], strides=[8]),
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')),
    roi_head=dict(bbox_head=dict(in_channels=264, feat_channels=256, featmap_stride=8)))
