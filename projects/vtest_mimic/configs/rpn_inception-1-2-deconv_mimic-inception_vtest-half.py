# Cross-scale mimic (paper Sec. 3.5, Table 10 "mimic + deconv"; the built-in benchmark's
# headline): the student of ./rpn_inception-1-2-deconv_vtest-half.py sees each 320x384 training
# crop at half size while the teacher (./rpn_inception_vtest.py, trained on the full-size frames)
# sees it at full size; the student's deconv map (stride 8 on the half image) mimics the teacher's
# inception_4d map (stride 16 on the full image, the same cells) through a 1x1 connector inside
# the 128 sampled proposals (Eq. 4), mapped x2 to the teacher's pixels. The student keeps its
# ScaledInputDataPreprocessor (so the extracted student tests on full frames); the distiller
# resizes the student's batch itself (student_input_scale, which must equal the student's
# input_scale) and preprocesses the teacher's batch with the plain DetDataPreprocessor. The
# study run sets teacher_ckpt, the loss weight chosen on the validation split, and the
# teacher-feature cache.
_base_ = './rpn_inception-1-2-deconv_vtest-half.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/rpn_inception_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/teacher/best.pth',
    student_input_scale=0.5,
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528 channels, same map size
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
