# Table 6, row "mimic + fine-tune" (paper Sec. 3.3, stage 2): the 1/2-Inception R-FCN whose
# backbone and RPN are initialised from the stage-1 mimic RPN
# (configs/mimic/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py), fine-tuned with ground truth only;
# the R-FCN layers are random, the RPN layers learn at 1/10 of their learning rate, RoI output 7x7.
# The table's other rows: scratch = configs/rfcn/rfcn_inception-1-2_1xb2-40k_caltech.py; the teacher =
# configs/rfcn/rfcn_inception_1xb2-40k_caltech.py.
# Stage-1 output: python tools/model_converters/extract_student.py \
#   configs/mimic/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py \
#   work_dirs/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech/iter_40000.pth \
#   work_dirs/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech/student
# (the distiller checkpoint itself also works: its "student." entries are used).
_base_ = '../rfcn/rfcn_inception-1-2_1xb2-40k_caltech.py'

stage1_ckpt = 'work_dirs/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech/student/student.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    # the stage-1 student is an mmdet RPN detector: its RPN head is "bbox_head"
    rpn_head=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')),
    roi_head=dict(bbox_head=dict(roi_feat_size=7)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
