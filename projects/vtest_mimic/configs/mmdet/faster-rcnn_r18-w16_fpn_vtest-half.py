# The mmdet block's two-stage student from scratch: the teacher's Faster R-CNN
# (./faster-rcnn_r18-w32_fpn_vtest.py) at half width (ResNet-18 of base 16 channels, FPN of 32)
# fed the frames at HALF the teacher's input (ScaledInputDataPreprocessor: the same 320x384
# crops resized x0.5 inside the model, exactly as the distiller resizes its student's batch, so
# this student and its mimic twin see bit-identical inputs for the same seed; padded to 64 so
# the halved batch meets the backbone's stride 32). Ground truth only. Anchors keep mmdet's
# scale 8 on the half image; tested on whole 640x480 frames, boxes in frame coordinates.
_base_ = './faster-rcnn_r18-w32_fpn_vtest.py'
channels = [16, 32, 64, 128]
fpn_channels = 32
model = dict(
    data_preprocessor=dict(type='ScaledInputDataPreprocessor', input_scale=0.5,
                           pad_size_divisor=64),
    backbone=dict(base_channels=16),
    neck=dict(in_channels=channels, out_channels=fpn_channels),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=128)))
