# Table 10, row "+ deconv" (the control): the 1/2-Inception RPN on 480x640 Caltech input with a x2
# deconvolution on inception_4d, so its RPN reads a stride-8 map; ground truth only, no mimic (the
# paper: the deconv alone does not help). Anchors keep their pixel sizes (scales doubled). Row
# "480x640" without deconv: configs/inception/rpn_inception-1-2_1xb2-40k_caltech-480x640.py.
_base_ = '../inception/rpn_inception-1-2_1xb2-40k_caltech-480x640.py'

model = dict(
    neck=dict(_delete_=True, type='Deconv2xNeck', in_channels=264, out_channels=264),
    rpn_head=dict(anchor_generator=dict(scales=[8, 16, 32], strides=[8])))
