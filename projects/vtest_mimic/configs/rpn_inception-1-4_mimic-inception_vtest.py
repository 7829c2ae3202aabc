# 1/4-Inception RPN student trained by proposal-sampled feature mimic (Eq. 4) of the vtest
# teacher's inception_4d map: the 1/2 mimic set-up with the 1/4 student (same as
# rpn_inception-1-4_vtest.py, the scratch twin with the same schedule and seed).
_base_ = './rpn_inception-1-2_mimic-inception_vtest.py'
model = dict(
    student=dict(
        backbone=dict(widen_factor=0.25),
        rpn_head=dict(in_channels=132, feat_channels=128)))
