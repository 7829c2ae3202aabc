# The mmdet block's teacher: mmdet's own Faster R-CNN R-50-FPN model config
# (mmdet::_base_/models/faster-rcnn_r50_fpn.py) shrunk for a CPU and trained from scratch on the
# full-size vtest frames: ResNet-18 at half width (base 32 channels), FPN P2-P6 of 64 channels,
# one class. Anchors keep mmdet's scale 8 (32-512 px sides over P2-P6) with the pedestrian h:w
# ratios 2:1 and 3:1. From scratch: no pretrained weights (nothing is downloaded), no frozen stem,
# BatchNorm in training mode. The study validates it while it trains and keeps the checkpoint
# with the best validation MR-2 (projects/vtest_mimic/README.md, "mmdet block").
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', './_base_/vtest_mmdet.py']
channels = [32, 64, 128, 256]
fpn_channels = 64
model = dict(
    backbone=dict(depth=18, base_channels=32, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=channels, out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels, feat_channels=fpn_channels,
        anchor_generator=dict(ratios=[2.0, 3.0])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=256, num_classes=1)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    # low-scoring detections are kept: the MR-FPPI curve reaches 1 false positive per frame
    test_cfg=dict(rcnn=dict(score_thr=0.01)))
