# Table 7: the 1/4-Inception RPN student mimicking the Inception RPN teacher.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    student=dict(
        backbone=dict(widen_factor=0.25),
        rpn_head=dict(in_channels=132, feat_channels=128)))  # 528 / 4, 512 / 4
