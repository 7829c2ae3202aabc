# 1/8-Inception RPN on Caltech: every conv has 1/8 of the filters (Tables 5, 7), trained
# from scratch with ground truth only (the mimic configs inherit this one as their student).
_base_ = './rpn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.125),
    rpn_head=dict(in_channels=66, feat_channels=64))  # 528 * 0.125, 512 * 0.125
