# ResNet-50-C4 Faster R-CNN teacher on Caltech (Tables 8, 14). See README.md.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py',  # Caffe input normalisation (BGR, no std)
    '../_base_/datasets/caltech.py',
    '../_base_/schedules/caltech_40k.py',
    '../_base_/default_runtime.py',
]

# Iteration-based schedule: log and checkpoint by iteration.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)

model = dict(
    rpn_head=dict(
        anchor_generator=dict(scales=[4, 8, 16], ratios=[2.0, 3.0], strides=[16])),
    roi_head=dict(bbox_head=dict(num_classes=1)),
    train_cfg=dict(
        rpn=dict(assigner=dict(ignore_iof_thr=0.5)),
        rcnn=dict(assigner=dict(ignore_iof_thr=0.5))),
    test_cfg=dict(rpn=dict(nms_pre=6000, max_per_img=300)))
