# Cross-scale control with the deconv, 1/4-Inception: see ./rpn_inception-1-2-deconv_vtest-half.py.
_base_ = './rpn_inception-1-2-deconv_vtest-half.py'
model = dict(
    backbone=dict(widen_factor=0.25),
    neck=dict(in_channels=132, out_channels=132),
    rpn_head=dict(in_channels=132, feat_channels=128))
