# 1/2-Inception RPN with inception_4d kept at stride 8 (pool3 without stride) on 480x640 input:
# its map has the size of the stride-16 map of the full-size image (cross-scale, Sec. 3.5), an
# alternative to the deconv connector. Anchors keep their pixel sizes (scales doubled at stride 8).
_base_ = './rpn_inception-1-2_1xb2-40k_caltech-480x640.py'

model = dict(
    backbone=dict(stage4_stride=8),
    rpn_head=dict(anchor_generator=dict(scales=[8, 16, 32], strides=[8])))
