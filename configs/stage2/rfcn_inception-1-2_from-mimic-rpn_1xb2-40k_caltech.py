# Table 6, "mimic + fine-tune": the 1/2-Inception R-FCN from the stage-1 mimic RPN. See README.md.
_base_ = '../rfcn/rfcn_inception-1-2_1xb2-40k_caltech.py'

# extract_student.py output of the stage-1 run (or the distiller checkpoint itself)
stage1_ckpt = 'work_dirs/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech/student/student.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    # the stage-1 student is an mmdet RPN detector: its RPN head is "bbox_head"
    rpn_head=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')),
    roi_head=dict(bbox_head=dict(roi_feat_size=7)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
