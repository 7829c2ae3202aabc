# Table 7: the 1/8-Inception RPN student mimicking the Inception RPN teacher.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    student=dict(
        backbone=dict(widen_factor=0.125),
        rpn_head=dict(in_channels=66, feat_channels=64)))  # 528 / 8, 512 / 8
