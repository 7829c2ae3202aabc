# Tiny two-stage mimic (tests; the tiny analogue of Table 13): the stage-2 half-width Faster R-CNN
# (backbone + RPN from the stage-1 mimic RPN) trained with ground truth + L2 of its RoI head's
# class logits and box deltas to the tiny teacher Faster R-CNN's on the same RoIs, + feature
# mimic on the stride-16 map. Tests set teacher_ckpt and the student's stage-1 checkpoint.
_base_ = ['../stage2/faster-rcnn_r18-w8_from-mimic-rpn_tiny.py']
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../stage2/faster-rcnn_r18-w16_tiny.py',
    teacher_ckpt='work_dirs/faster-rcnn_r18-w16_tiny/iter_200.pth',
    connector=dict(type='Conv1x1Connector'),
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),  # None: feature mimic off
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
