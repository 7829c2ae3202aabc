# Cross-scale mimic, 1/4-Inception student (student of ./rpn_inception-1-4-deconv_vtest-half.py):
# see ./rpn_inception-1-2-deconv_mimic-inception_vtest-half.py (connector 132 -> 528 channels).
_base_ = './rpn_inception-1-2-deconv_mimic-inception_vtest-half.py'
model = dict(
    student=dict(
        backbone=dict(widen_factor=0.25),
        neck=dict(in_channels=132, out_channels=132),
        rpn_head=dict(in_channels=132, feat_channels=128)))
