# Stage 1 of the paper on Caltech (Table 5): the randomly initialised 1/2-Inception RPN mimics the
# inception_4d map (stride 16) of the trained Inception RPN teacher inside 128 RoIs per image
# sampled 1:1 from its own proposals (Eq. 4, lambda1 = 1); RPN ground-truth losses as usual.
# Train the teacher first: tools/train.py configs/inception/rpn_inception_caltech.py
# The scratch student of the same table is configs/inception/rpn_inception-1-2_caltech.py.
_base_ = '../inception/rpn_inception-1-2_caltech.py'

teacher_config = '{{fileDirname}}/../inception/rpn_inception_caltech.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher=teacher_config,
    teacher_ckpt='work_dirs/rpn_inception_caltech/iter_40000.pth',
    student_feature=-1,  # backbone out_indices=('inception_4d', ): the last shared map
    teacher_feature=-1,
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528 channels, checked at build time
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    mimic_cfg=dict(
        # proposals as the student RPN's own predict step gives them (its test_cfg: top 6000
        # before NMS 0.7, 300 after); 128 of them are sampled per image
        proposal=None,
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.5,
            match_low_quality=False,
            ignore_iof_thr=0.5),  # proposals inside Caltech ignore regions are not negatives
        sampler=dict(
            type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1,
            add_gt_as_proposals=False)))
