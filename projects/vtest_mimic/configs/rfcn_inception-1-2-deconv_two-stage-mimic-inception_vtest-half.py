# Two-stage mimic in the built-in benchmark's cross-scale block (paper Sec. 3.4, Table 9): the
# stage-2 R-FCN of ./rfcn_inception-1-2-deconv_vtest-half.py (from the stage-1 MIMIC RPN) trained
# with ground truth plus feature mimic of the R-FCN teacher's inception_4d map (Eq. 4, cross-scale:
# the student sees the half-size crop, the teacher the full-size one) plus the L2 of its R-FCN
# class logits and box deltas to the teacher's on the same sampled RoIs (mapped x2).
# the study run sets stage1_ckpt, teacher_ckpt and the mimic weight chosen on validation.
_base_ = './rfcn_inception-1-2-deconv_vtest-half.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/rfcn_inception_vtest.py',
    teacher_ckpt='work_dirs/mimic_demo/teacher-rfcn/iter_600.pth',
    student_input_scale=0.5,
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    roi_mimic_cls_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0),
    roi_mimic_bbox_loss=dict(type='RoILogitsL2Loss', loss_weight=1.0))
