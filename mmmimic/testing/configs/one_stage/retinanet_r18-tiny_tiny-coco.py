# A one-stage student for the one-flag path: mmdet's own RetinaNet (inherited through the mmdet::
# prefix) with a tiny ResNet-18 (16 base channels) and a 32-channel FPN, on the tiny COCO data.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/tiny_coco.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None, norm_eval=False),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(num_classes=1, in_channels=32, feat_channels=32, stacked_convs=1))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
