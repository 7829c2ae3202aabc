# Inception (GoogLeNet v1) RPN on inception_4d (stride 16): the paper's stage-1 detector on Caltech
# (Li et al. 2017, Sec. 4.1). Anchors: h:w ratios 2:1 and 3:1 (mmdet ratios are h/w), scales
# giving areas 4^2, 8^2, 16^2 in stride units (64, 128, 256 px sides at stride 16).
# ``widen_factor`` scales every backbone conv; the RPN conv is scaled with it in the variants.
model = dict(
    type='RPN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='Inception',
        widen_factor=1.0,
        out_indices=('inception_4d', ),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        frozen_stages=-1),
    neck=None,
    rpn_head=dict(
        type='RPNHead',
        in_channels=528,  # inception_4d: 112 + 288 + 64 + 64
        feat_channels=512,
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4, 8, 16], ratios=[2.0, 3.0], strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        # L_gt = L_cls + lambda2 * L_reg with lambda2 = 1 (paper Eq. 5).
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=0.5),
            sampler=dict(
                type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0)))
