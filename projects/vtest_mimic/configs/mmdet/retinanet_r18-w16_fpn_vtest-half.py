# The mmdet block's one-stage student from scratch: mmdet's own RetinaNet model config
# (mmdet::_base_/models/retinanet_r50_fpn.py) with the two-stage student's half-width ResNet-18
# (base 16 channels), FPN P3-P7 of 32 channels, 2 stacked head convs, one class, the pedestrian
# h:w ratios 2:1 and 3:1; fed the frames at HALF the teacher's input exactly like
# ./faster-rcnn_r18-w16_fpn_vtest-half.py. From scratch (no pretrained weights, BatchNorm in
# training mode), ground truth only.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', './_base_/vtest_mmdet.py']
channels = [16, 32, 64, 128]
fpn_channels = 32
model = dict(
    data_preprocessor=dict(type='ScaledInputDataPreprocessor', input_scale=0.5,
                           pad_size_divisor=64),
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=channels, out_channels=fpn_channels),
    bbox_head=dict(
        num_classes=1, in_channels=fpn_channels, stacked_convs=2, feat_channels=fpn_channels,
        anchor_generator=dict(ratios=[2.0, 3.0])),
    # low-scoring detections are kept: the MR-FPPI curve reaches 1 false positive per frame
    test_cfg=dict(score_thr=0.01))
