# Table 9 (paper Sec. 3.4, two-stage mimic): the stage-2 1/2-Inception R-FCN
# (../stage2/rfcn_inception-1-2_from-mimic-rpn_1xb2-40k_caltech.py: backbone + RPN from the stage-1 mimic
# RPN, RPN at 1/10 lr) is trained with ground truth plus the L2 of its R-FCN class logits and box
# deltas to the Inception R-FCN teacher's on the same sampled RoIs; feature mimic on inception_4d
# stays on (mimic_loss=None turns it off). Table 9's other row is the stage-2 config itself.
_base_ = '../stage2/rfcn_inception-1-2_from-mimic-rpn_1xb2-40k_caltech.py'

model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../rfcn/rfcn_inception_1xb2-40k_caltech.py',
    teacher_ckpt='work_dirs/rfcn_inception_1xb2-40k_caltech/iter_40000.pth',
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5)),  # Caltech ignore regions
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
