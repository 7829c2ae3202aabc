# Cross-scale mimic, 1/4-Inception student: see ./rpn_inception-1-2-deconv_mimic-inception_vtest-half.py
# (connector 132 -> 528 channels).
_base_ = './rpn_inception-1-4-deconv_vtest-half.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/rpn_inception_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/teacher/best.pth',
    student_input_scale=0.5,
    connector=dict(type='Conv1x1Connector'),
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
