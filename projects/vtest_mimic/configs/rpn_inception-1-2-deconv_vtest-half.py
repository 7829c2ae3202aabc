# Cross-scale control with the deconv (paper Table 10, "+ deconv"; the built-in benchmark's
# headline block): the 1/2-Inception RPN fed the frames at HALF the teacher's input
# (ScaledInputDataPreprocessor: the same 320x384 crops as the teacher's pipeline, resized x0.5
# inside the model exactly as the cross-scale distiller resizes its student's batch, so this
# student and its mimic twin see bit-identical inputs for the same seed) with a x2 deconvolution
# on inception_4d: its RPN reads a stride-8 map of the half image, as large as the teacher's
# stride-16 map of the full image. Ground truth only. Anchors keep their sizes in the half image
# (16-64 px: the teacher's 32-128 px / 2). Tested on whole 640x480 frames (resized inside the
# model); boxes come back in frame coordinates.
_base_ = './rpn_inception_vtest.py'
model = dict(
    data_preprocessor=dict(type='ScaledInputDataPreprocessor', input_scale=0.5),
    backbone=dict(widen_factor=0.5),
    neck=dict(_delete_=True, type='Deconv2xNeck', in_channels=264, out_channels=264),
    rpn_head=dict(
        in_channels=264, feat_channels=256,
        anchor_generator=dict(scales=[2, 4, 8], strides=[8])))
