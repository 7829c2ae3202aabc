# 1/8-Inception R-FCN on Caltech from scratch (Tables 3, 6, 7).
_base_ = './rfcn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.125),
    rpn_head=dict(in_channels=66, feat_channels=64),  # 528 * 0.125, 512 * 0.125
    roi_head=dict(bbox_head=dict(in_channels=66, feat_channels=64)))
