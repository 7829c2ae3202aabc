# 1/2-Inception RPN student from scratch (ground truth only): the control of the mimic student.
_base_ = './rpn_inception_vtest.py'
model = dict(
    backbone=dict(widen_factor=0.5),
    rpn_head=dict(in_channels=264, feat_channels=256))
