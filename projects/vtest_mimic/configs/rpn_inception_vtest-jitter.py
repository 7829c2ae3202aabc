# The augmented-teacher candidate of the built-in benchmark: ./rpn_inception_vtest.py with scale
# jitter (each training frame resized by a random factor in [0.8, 1.25] of 640x480, so people
# are ~20-110 px tall, inside the anchors' 32-128 px with the RPN's regression) and photometric
# distortion (brightness, contrast, saturation, hue) before the same 320x384 stride-aligned crops
# and flips. Tested on the whole full-size frames like the plain teacher. Whether it replaces the
# plain teacher is decided on the validation split by projects/vtest_mimic/tools/teacher_sweep.py.
_base_ = './rpn_inception_vtest.py'

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(640, 480), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='StrideAlignedRandomCrop', crop_size=(320, 384), stride=16,
         allow_negative_crop=False),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor', 'flip', 'flip_direction',
                                          'crop_offset', 'precrop_shape'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
