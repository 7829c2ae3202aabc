# A one-stage student for the one-flag path: mmdet's own RetinaNet (inherited through the mmdet::
# prefix) with a tiny ResNet-18 (16 base channels) and a 32-channel FPN, on the tiny COCO data.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/tiny_coco.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/tiny_8it.py',
]

model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None, norm_eval=False),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(num_classes=1, in_channels=32, feat_channels=32, stacked_convs=1))

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
