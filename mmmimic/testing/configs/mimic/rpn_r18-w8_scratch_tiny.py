# Tiny scratch student RPN: the teacher's trunk at half width (32-channel stride-16 map),
# randomly initialised, trained with ground truth only (the "scratch" row of the tables).
_base_ = ['./rpn_r18-w16_tiny.py']
base_channels = 8
model = dict(
    backbone=dict(base_channels=base_channels),
    rpn_head=dict(in_channels=base_channels * 4, feat_channels=base_channels * 4))
