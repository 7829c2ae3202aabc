# 1/2-Inception RPN on 480x640 input with inception_4d at stride 8. See README.md.
_base_ = './rpn_inception-1-2_1xb2-40k_caltech-480x640.py'

model = dict(
    backbone=dict(stage4_stride=8),  # pool3 without stride
    # stride 8: scales doubled, so the anchors keep their pixel sizes
    rpn_head=dict(anchor_generator=dict(scales=[8, 16, 32], strides=[8])))
