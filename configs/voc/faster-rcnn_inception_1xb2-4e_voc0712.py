# Inception Faster R-CNN on VOC 07+12, tested on VOC 2007 test (Tables 11-13). See README.md.
_base_ = [
    '../_base_/models/faster-rcnn_inception.py',
    'mmdet::_base_/datasets/voc0712.py',
    '../_base_/default_runtime.py',
]

# mmdet's VOC schedule (the dataset base repeats the data x3): 4 epochs, lr step after epoch 3
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=4, by_epoch=True, milestones=[3], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
