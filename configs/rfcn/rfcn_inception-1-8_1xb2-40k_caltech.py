# 1/8-Inception R-FCN on Caltech (Tables 3, 6, 7): every conv has 1/8 of the filters.
_base_ = './rfcn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.125),
    rpn_head=dict(in_channels=66, feat_channels=64),  # 528 * 0.125, 512 * 0.125
    roi_head=dict(bbox_head=dict(in_channels=66, feat_channels=64)))
