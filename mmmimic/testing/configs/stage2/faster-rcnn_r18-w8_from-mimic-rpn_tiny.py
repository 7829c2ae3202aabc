# Tiny stage 2 (tests; the tiny analogue of Table 12): the half-width Faster R-CNN whose backbone
# and RPN come from the tiny stage-1 mimic RPN (../mimic/mimic_rpn_r18-w8_tiny.py),
# RoI head random, RPN at 1/10 of the learning rate. Tests set stage1_ckpt.
_base_ = ['./faster-rcnn_r18-w16_tiny.py']
base_channels = 8
# extract_student.py output of the stage-1 run (or the distiller checkpoint itself)
stage1_ckpt = 'work_dirs/mimic_rpn_r18-w8_tiny/student/student.pth'
model = dict(
    backbone=dict(
        base_channels=base_channels,
        init_cfg=dict(
            _delete_=True, type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    rpn_head=dict(
        in_channels=base_channels * 4,
        feat_channels=base_channels * 4,
        # the stage-1 student is an mmdet RPN detector: its RPN head is "bbox_head"
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=base_channels * 4),
        bbox_head=dict(in_channels=base_channels * 4, fc_out_channels=32)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
