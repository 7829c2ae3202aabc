# 1/8-Inception RPN on Caltech from scratch (Tables 5, 7); the student of configs/mimic/.
_base_ = './rpn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.125),
    rpn_head=dict(in_channels=66, feat_channels=64))  # 528 * 0.125, 512 * 0.125
