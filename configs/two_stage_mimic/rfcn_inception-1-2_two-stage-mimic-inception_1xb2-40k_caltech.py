# Table 9: two-stage mimic of the stage-2 1/2-Inception R-FCN. See README.md.
_base_ = '../stage2/rfcn_inception-1-2_from-mimic-rpn_1xb2-40k_caltech.py'

model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../rfcn/rfcn_inception_1xb2-40k_caltech.py',
    teacher_ckpt='work_dirs/rfcn_inception_1xb2-40k_caltech/iter_40000.pth',
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),  # None: feature mimic off
    mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5)),  # Caltech ignore regions
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
