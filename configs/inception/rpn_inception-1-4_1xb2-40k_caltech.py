# 1/4-Inception RPN on Caltech: every conv has 1/4 of the filters (Tables 5, 7), trained
# from scratch with ground truth only (the mimic configs inherit this one as their student).
_base_ = './rpn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.25),
    rpn_head=dict(in_channels=132, feat_channels=128))  # 528 * 0.25, 512 * 0.25
