# Quickstart student: the teacher's network at half width (32-channel stride-16 map, a quarter of
# its parameters), randomly initialised, 200 iterations. Alone it trains from scratch; with
# `tools/train.py THIS --teacher TEACHER_CONFIG TEACHER_CKPT` it also mimics the teacher's map.
_base_ = ['./rpn_r18-w16_1xb2-300it_tiny-coco.py']
base_channels = 8
model = dict(
    backbone=dict(base_channels=base_channels),
    rpn_head=dict(in_channels=base_channels * 4, feat_channels=base_channels * 4))

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
