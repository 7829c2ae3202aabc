# Quickstart teacher: a single-level RPN on a ResNet-18 trunk at 1/4 width (64-channel stride-16
# map), trained from scratch on the tiny generated pedestrian data (README, "Quickstart").
_base_ = ['../_base_/datasets/tiny_coco.py', '../_base_/default_runtime.py']
base_channels = 16
model = dict(
    type='RPN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=base_channels,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=None,
    rpn_head=dict(
        type='RPNHead',
        in_channels=base_channels * 4,
        feat_channels=base_channels * 4,
        anchor_generator=dict(
            type='AnchorGenerator', scales=[2, 3, 4], ratios=[2.0, 3.0], strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0)))

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[int(max_iters * 0.75)], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0005))
# An RPN is scored by proposal recall (mmdet's 'proposal_fast' breaks on numpy>=1.24).
val_evaluator = dict(
    _delete_=True, type='ProposalRecallMetric', proposal_nums=(10, 100, 300), iou_thrs=(0.5, 0.7))
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False, window_size=50)
randomness = dict(seed=0)
