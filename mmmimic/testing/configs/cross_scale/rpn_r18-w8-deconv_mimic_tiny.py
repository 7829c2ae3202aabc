# Tiny cross-scale mimic (tests; the tiny analogue of Table 10's "mimic + deconv" row): the
# deconv student sees the batch at half size, the tiny teacher the full-size batch; the student's
# upsampled map (stride 8 on the half image = stride 16 on the full one) mimics the teacher's
# stride-16 map through a 1x1 connector inside the sampled RoIs (mapped back x2). Tests set
# teacher_ckpt.
_base_ = ['./rpn_r18-w8-deconv_tiny.py']
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../mimic/rpn_r18-w16_tiny.py',
    teacher_ckpt='work_dirs/rpn_r18-w16_tiny/iter_200.pth',
    student_input_scale=0.5,
    connector=dict(type='Conv1x1Connector'),  # 32 -> 64 channels, same size
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
