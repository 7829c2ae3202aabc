# Table 10, "+ deconv" (control): 480x640 input, x2 deconv neck, no mimic. See README.md.
_base_ = '../inception/rpn_inception-1-2_1xb2-40k_caltech-480x640.py'

model = dict(
    neck=dict(_delete_=True, type='Deconv2xNeck', in_channels=264, out_channels=264),
    # stride 8: scales doubled, so the anchors keep their pixel sizes
    rpn_head=dict(anchor_generator=dict(scales=[8, 16, 32], strides=[8])))
