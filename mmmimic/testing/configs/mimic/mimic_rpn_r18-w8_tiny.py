# Tiny stage-1 feature mimic: the half-width student RPN mimics the tiny teacher's stride-16 map
# inside 128 sampled student proposals per image (Eq. 4). Tests override teacher_ckpt / data.
_base_ = ['./rpn_r18-w8_scratch_tiny.py']
teacher_config = '{{fileDirname}}/rpn_r18-w16_tiny.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher=teacher_config,
    teacher_ckpt='work_dirs/rpn_r18-w16_tiny/iter_200.pth',
    student_feature=-1,  # the backbone's last output (out_indices=(2, )), stride 16
    teacher_feature=-1,
    connector=dict(type='Conv1x1Connector'),  # 32 -> 64 channels, read from the networks
    # mimic_cfg: DEFAULT_MIMIC_CFG (proposals from the student RPN's own predict step, i.e. its
    # test_cfg; 128 RoIs/image sampled 1:1)
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
