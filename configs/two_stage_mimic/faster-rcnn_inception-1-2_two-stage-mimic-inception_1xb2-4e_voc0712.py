# Table 13: two-stage mimic of the stage-2 1/2-Inception Faster R-CNN on VOC. See README.md.
_base_ = '../stage2/faster-rcnn_inception-1-2_from-mimic-rpn_1xb2-4e_voc0712.py'

model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../voc/faster-rcnn_inception_1xb2-4e_voc0712.py',
    teacher_ckpt='work_dirs/faster-rcnn_inception_1xb2-4e_voc0712/epoch_4.pth',
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
