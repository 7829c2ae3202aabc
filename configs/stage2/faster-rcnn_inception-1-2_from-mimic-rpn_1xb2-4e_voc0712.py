# Table 12, row "mimic + fine-tune" (stage 2 on VOC): the 1/2-Inception Faster R-CNN whose backbone
# and RPN come from the VOC stage-1 mimic RPN (./rpn_inception-1-2_mimic-inception_1xb2-4e_voc0712.py,
# exported with tools/model_converters/extract_student.py); RoI head random, RPN layers at 1/10 of
# the learning rate, VOC 2007 test mAP. Scratch row:
# configs/voc/faster-rcnn_inception-1-2_1xb2-4e_voc0712.py.
_base_ = '../voc/faster-rcnn_inception-1-2_1xb2-4e_voc0712.py'

stage1_ckpt = 'work_dirs/rpn_inception-1-2_mimic-inception_1xb2-4e_voc0712/student/student.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='backbone.')),
    rpn_head=dict(
        init_cfg=dict(type='MimicStudentInit', checkpoint=stage1_ckpt, prefix='bbox_head.')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rpn_head': dict(lr_mult=0.1)}))
