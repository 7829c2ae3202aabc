# Stage 1 of the paper on Caltech (Table 5): the randomly initialised 1/2-Inception RPN mimics the
# inception_4d map (stride 16) of the trained Inception RPN teacher inside 128 RoIs per image
# sampled 1:1 from its own proposals (Eq. 4, lambda1 = 1); RPN ground-truth losses as usual.
# Train the teacher first: tools/train.py configs/inception/rpn_inception_1xb2-40k_caltech.py
# The scratch student of the same table is configs/inception/rpn_inception-1-2_1xb2-40k_caltech.py.
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
    # DEFAULT_MIMIC_CFG: proposals as the student RPN's own predict step gives them (its
    # test_cfg: top 6000 before NMS 0.7, 300 after), 128 sampled per image 1:1 at IoU 0.5; here
    # proposals inside Caltech ignore regions are not negatives
    mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))
