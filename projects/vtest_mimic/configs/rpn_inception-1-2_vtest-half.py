# Cross-scale control without the deconv (the paper's plain half-input student, Table 10 row
# "480x640"): the 1/2-Inception RPN on the frames at half the teacher's input, stride 16, anchors
# of the same 16-64 px in the half image (scales halved). Same data path as
# ./rpn_inception-1-2-deconv_vtest-half.py.
_base_ = './rpn_inception_vtest.py'
model = dict(
    data_preprocessor=dict(type='ScaledInputDataPreprocessor', input_scale=0.5),
    backbone=dict(widen_factor=0.5),
    rpn_head=dict(
        in_channels=264, feat_channels=256,
        anchor_generator=dict(scales=[1, 2, 4], strides=[16])))
