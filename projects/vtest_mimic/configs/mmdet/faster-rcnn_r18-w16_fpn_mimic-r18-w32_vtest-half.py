# The mmdet block's two-stage mimic student: ./faster-rcnn_r18-w16_fpn_vtest-half.py sees each
# crop at half size while the teacher (./faster-rcnn_r18-w32_fpn_vtest.py) sees it at full size.
# Pyramid mimic (docs/advanced_guides/distiller.md, "Pyramids"): student level P_k (stride s on
# the half input, 2s in the teacher's pixels) pairs with the teacher's level of stride 2s
# (P2->P3, P3->P4, P4->P5, P5->P6; the student's P6 has no partner), one 1x1 connector per pair
# (32 -> 64 channels); each of the student RPN's sampled proposals is compared on the level(s)
# `level_rule` gives it (Eq. 4 per RoI). The study run sets teacher_ckpt and the loss weight
# (configs/presets/default.py). The level rule is the validation sweep's choice
# (projects/vtest_mimic/results/mmdet_sweep/sweep_frcnn.md: mmdet's scale rule, the default; every
# variant tied there at 0.0 validation MR-2 and ties keep the default).
_base_ = './faster-rcnn_r18-w16_fpn_vtest-half.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/faster-rcnn_r18-w32_fpn_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/shared/mm-teacher/best.pth',
    student_input_scale=0.5,
    mimic_levels='auto',
    level_rule='scale',
    connector=dict(type='Conv1x1Connector'),
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
