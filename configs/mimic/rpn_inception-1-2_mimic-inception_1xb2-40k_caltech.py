# Table 5: the 1/2-Inception RPN mimics the Inception RPN teacher (Eq. 4). See README.md.
_base_ = '../inception/rpn_inception-1-2_1xb2-40k_caltech.py'

teacher_config = '{{fileDirname}}/../inception/rpn_inception_1xb2-40k_caltech.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher=teacher_config,
    teacher_ckpt='work_dirs/rpn_inception_1xb2-40k_caltech/iter_40000.pth',
    student_feature=-1,  # backbone out_indices=('inception_4d', ): the last shared map
    teacher_feature=-1,
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528 channels, checked at build time
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    # DEFAULT_MIMIC_CFG, except that proposals in Caltech ignore regions are not negatives
    mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))
