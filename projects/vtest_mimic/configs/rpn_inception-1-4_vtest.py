# 1/4-Inception RPN student from scratch (ground truth only).
_base_ = './rpn_inception_vtest.py'
model = dict(
    backbone=dict(widen_factor=0.25),
    rpn_head=dict(in_channels=132, feat_channels=128))
