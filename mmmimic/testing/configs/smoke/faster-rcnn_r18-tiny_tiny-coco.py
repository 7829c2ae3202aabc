# Smoke test of the stack: mmdet's own Faster R-CNN (inherited through the mmdet:: prefix) with a
# tiny ResNet-18 (16 base channels), trained for a few iterations on the generated tiny COCO data.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/tiny_coco.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/tiny_8it.py',
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(depth=18, base_channels=16, init_cfg=None, norm_eval=False),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=1)))

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
