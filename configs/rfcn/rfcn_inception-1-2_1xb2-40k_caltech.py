# 1/2-Inception R-FCN on Caltech from scratch (Tables 3, 6, 7).
_base_ = './rfcn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.5),
    rpn_head=dict(in_channels=264, feat_channels=256),  # 528 * 0.5, 512 * 0.5
    roi_head=dict(bbox_head=dict(in_channels=264, feat_channels=256)))
