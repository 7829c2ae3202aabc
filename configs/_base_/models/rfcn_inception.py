# Inception R-FCN on inception_4d (stride 16): RPN + position-sensitive RoI head, 7x7 bins,
# class-agnostic box regression, average voting (Dai et al. 2016; Li et al. 2017, Table 2).
_base_ = './inception_rpn.py'

model = dict(
    type='RFCN',
    # the RPN's train_cfg.rpn / test_cfg.rpn come from inception_rpn.py unchanged
    train_cfg=dict(
        rpn_proposal=dict(
            nms_pre=6000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=0.5),
            sampler=dict(
                type='RandomSampler', num=128, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rcnn=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
    roi_head=dict(
        type='RFCNRoIHead',
        bbox_head=dict(
            type='RFCNBBoxHead',
            in_channels=528,
            feat_channels=512,  # conv_new, scaled with widen_factor in the variants
            roi_feat_size=7,
            featmap_stride=16,
            num_classes=1,
            reg_class_agnostic=True,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))))
