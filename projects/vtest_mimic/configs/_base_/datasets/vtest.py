# The vtest study's real-video pedestrian data: OpenCV's vtest.avi labelled by the classical
# procedure of projects/vtest_mimic/tools/build_vtest.py (projects/vtest_mimic/docs/labels.md),
# as a Caltech-format release converted by tools/dataset_converters/caltech.py (presets
# vtest_train/vtest_val/vtest_test). Frames are 640x480 (Caltech's size); people are ~25-90 px
# tall. `python -m projects.vtest_mimic.tools.run` builds data/vtest/ itself. NOT Caltech
# numbers: a single static campus scene.
_base_ = '../../../../../configs/_base_/datasets/caltech_480x640.py'  # noqa: E501

data_root = 'data/vtest/'
backend_args = None
# CPU budget: train on 320x384 crops of the 640x480 frames (people keep their size); test on
# whole frames. The crop offsets are multiples of 16 (the Inception teacher's stride), so a
# mimic run can take the teacher's map from the teacher-feature cache
# (docs/advanced_guides/distiller.md); every
# benchmark model, teacher and scratch students included, draws its crops the same way.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='StrideAlignedRandomCrop', crop_size=(320, 384), stride=16,
         allow_negative_crop=False),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor', 'flip', 'flip_direction',
                                          'crop_offset', 'precrop_shape'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(data_root=data_root, ann_file='vtest_train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file='vtest_val.txt'))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CaltechPedestrianDataset',
        data_root=data_root,
        ann_file='vtest_test.txt',
        data_prefix=dict(img='images/', ann='annotations/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
        backend_args=backend_args))

# MR-2 / MR-4 (%, lower is better) with the official Caltech rules, plus RPN proposal recall.
val_evaluator = [
    dict(type='CaltechMRMetric', settings=['Reasonable'], resize_dets=True),
    dict(type='ProposalRecallMetric', proposal_nums=(300, ), iou_thrs=(0.5, 0.7), min_gt_height=50),
]
test_evaluator = [
    dict(type='CaltechMRMetric', settings=['Reasonable', 'All'], resize_dets=True),
    dict(type='ProposalRecallMetric', proposal_nums=(300, ), iou_thrs=(0.5, 0.7), min_gt_height=50),
]
