# Data, schedule and runtime of the vtest study's mmdet block (the study's own, see
# ../../_base_/): the same frames, 320x384 training crops and AdamW schedule as the Inception
# models, with the crop offsets aligned to 32 (the ResNet's coarsest stride), iteration-based
# logging and checkpoints.
_base_ = [
    '../../_base_/datasets/vtest.py',
    '../../_base_/schedules/vtest.py',
    '../../../../../configs/_base_/default_runtime.py',
]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='StrideAlignedRandomCrop', crop_size=(320, 384), stride=32,
         allow_negative_crop=False),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor', 'flip', 'flip_direction',
                                          'crop_offset', 'precrop_shape'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
# detections are scored with the Caltech metric only (the two-stage and one-stage detectors
# return detections, not proposals)
val_evaluator = [dict(type='CaltechMRMetric', settings=['Reasonable'], resize_dets=True)]
test_evaluator = [dict(type='CaltechMRMetric', settings=['Reasonable', 'All'], resize_dets=True)]
