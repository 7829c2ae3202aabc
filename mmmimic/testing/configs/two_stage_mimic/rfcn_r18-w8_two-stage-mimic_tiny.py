# Tiny two-stage mimic (tests; the tiny analogue of Table 9): the stage-2 half-width R-FCN
# learns the tiny teacher R-FCN's PS-pooled class logits and box deltas on the same RoIs, plus
# ground truth and feature mimic. Tests set teacher_ckpt and the student's stage-1 checkpoint.
_base_ = ['../stage2/rfcn_r18-w8_from-mimic-rpn_tiny.py']
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../stage2/rfcn_r18-w16_tiny.py',
    teacher_ckpt='work_dirs/rfcn_r18-w16_tiny/iter_200.pth',
    connector=dict(type='Conv1x1Connector'),
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
