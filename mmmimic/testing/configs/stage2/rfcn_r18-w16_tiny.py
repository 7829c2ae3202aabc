# Tiny R-FCN (tests only): the tiny Faster R-CNN with mmmimic's R-FCN RoI head (7x7
# position-sensitive bins, class-agnostic regression) instead of RoIAlign + fc.
_base_ = ['./faster-rcnn_r18-w16_tiny.py']
base_channels = 16
model = dict(
    type='RFCN',
    roi_head=dict(
        _delete_=True,
        type='RFCNRoIHead',
        bbox_head=dict(
            type='RFCNBBoxHead',
            in_channels=base_channels * 4,
            feat_channels=64,
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
