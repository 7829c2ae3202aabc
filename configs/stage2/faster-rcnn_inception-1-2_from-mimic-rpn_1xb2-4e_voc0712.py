# Table 12, "mimic + fine-tune": the 1/2-Inception Faster R-CNN from the VOC stage-1 mimic RPN.
_base_ = '../voc/faster-rcnn_inception-1-2_1xb2-4e_voc0712.py'

# extract_student.py output of the stage-1 run (or the distiller checkpoint itself)
stage1_ckpt = 'work_dirs/rpn_inception-1-2_mimic-inception_1xb2-4e_voc0712/student/student.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    rpn_head=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
