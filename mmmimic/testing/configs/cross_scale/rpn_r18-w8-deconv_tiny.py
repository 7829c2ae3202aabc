# Tiny cross-scale control (tests; the tiny analogue of Table 10's "+ deconv" row): the half-width
# student RPN with a x2 deconv neck, so its RPN reads a stride-8 map; ground truth only. Anchors
# keep their pixel sizes (scales doubled at stride 8). As the control it runs on the half-size
# images (a dataset Resize); the tests only need its model.
_base_ = ['../mimic/rpn_r18-w8_scratch_tiny.py']
base_channels = 8
model = dict(
    neck=dict(
        _delete_=True,
        type='Deconv2xNeck',
        in_channels=base_channels * 4,
        out_channels=base_channels * 4),
    rpn_head=dict(anchor_generator=dict(scales=[4, 6, 8], strides=[8])))
