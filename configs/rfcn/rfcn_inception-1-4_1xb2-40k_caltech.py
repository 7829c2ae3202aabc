# 1/4-Inception R-FCN on Caltech (Tables 3, 6, 7): every conv has 1/4 of the filters.
_base_ = './rfcn_inception_1xb2-40k_caltech.py'

model = dict(
    backbone=dict(widen_factor=0.25),
    rpn_head=dict(in_channels=132, feat_channels=128),  # 528 * 0.25, 512 * 0.25
    roi_head=dict(bbox_head=dict(in_channels=132, feat_channels=128)))
