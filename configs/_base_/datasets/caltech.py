# Caltech Pedestrian, frames scaled to a 1000 px short side as in the paper (640x480 -> 1333x1000).
# Data: tools/dataset_converters/caltech.py writes data/caltech/{images,annotations}/ and the image
# lists train10x.txt / train1x.txt / test.txt.
dataset_type = 'CaltechPedestrianDataset'
data_root = 'data/caltech/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 1000), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 1000), keep_ratio=True),
    # after Resize: gt stays in original coordinates, like the rescaled predictions
    dict(type='LoadAnnotations', with_bbox=True),
    # 'ann_path' lets CaltechMRMetric read each frame's raw bbGt annotation
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ann_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train10x.txt',
        data_prefix=dict(img='images/', ann='annotations/'),
        # the paper trains on the frames with pedestrians only (~9k of 42782)
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='test.txt',  # all 4024 test frames, empty ones included
        data_prefix=dict(img='images/', ann='annotations/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# MR-2 / MR-4 in %, lower is better (save_best='caltech/Reasonable_MR-2', rule='less')
val_evaluator = dict(
    type='CaltechMRMetric', settings=['Reasonable'], resize_dets=True, log_floor=None)
test_evaluator = dict(
    type='CaltechMRMetric',
    settings=['Reasonable', 'All', 'Scale=far', 'Scale=medium', 'Scale=near', 'Occ=none',
              'Occ=partial', 'Occ=heavy'],
    resize_dets=True,
    log_floor=None,
    save_result_files=True)
