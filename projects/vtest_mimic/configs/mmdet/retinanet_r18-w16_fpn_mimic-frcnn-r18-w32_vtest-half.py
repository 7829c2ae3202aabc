# The mmdet block's one-stage mimic student: ./retinanet_r18-w16_fpn_vtest-half.py at half input
# mimics the two-stage teacher (./faster-rcnn_r18-w32_fpn_vtest.py, full input): a teacher of
# another family. Its mimic RoIs are its own post-NMS detections of the training step (the
# one-stage analogue of the RPN's proposals), assigned and sampled against the ground truth;
# student level P_k (stride s on the half input, 2s in the teacher's pixels) pairs with the
# teacher's level of stride 2s (P3->P4, P4->P5, P5->P6; P6 and P7 have no partner), one 1x1
# connector per pair (32 -> 64 channels). The study run sets teacher_ckpt and the loss weight
# (configs/presets/default.py). The level rule was chosen on the validation split
# (projects/vtest_mimic/results/mmdet_sweep/sweep_retina.md): every sampled detection is compared
# on the finest pair (P3 -> the teacher's P4).
_base_ = './retinanet_r18-w16_fpn_vtest-half.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/faster-rcnn_r18-w32_fpn_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/shared/mm-teacher/best.pth',
    student_input_scale=0.5,
    mimic_levels='auto',
    level_rule=0,
    connector=dict(type='Conv1x1Connector'),
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
