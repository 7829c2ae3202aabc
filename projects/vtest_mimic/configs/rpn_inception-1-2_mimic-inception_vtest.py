# 1/2-Inception RPN student trained by proposal-sampled feature mimic (Eq. 4) of the vtest
# teacher's inception_4d map, same schedule and seed as the scratch student. The study's run
# (the study run) sets teacher_ckpt to the teacher it trained.
_base_ = './rpn_inception-1-2_vtest.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/rpn_inception_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/teacher/iter_3000.pth',
    student_feature=-1,
    teacher_feature=-1,
    connector=dict(type='Conv1x1Connector'),
    # lambda1: 0.1, chosen over the paper's 1.0 on the vtest VALIDATION split by
    # projects/vtest_mimic/tools/weight_sweep.py (projects/vtest_mimic/results/weight_sweep/).
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=0.1))
