# Table 10, "mimic + deconv": student at 480x640, teacher at 960x1280. See README.md.
_base_ = './rpn_inception-1-2-deconv_1xb2-40k_caltech-480x640.py'

model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../inception/rpn_inception_1xb2-40k_caltech.py',
    teacher_ckpt='work_dirs/rpn_inception_1xb2-40k_caltech/iter_40000.pth',
    student_input_scale=0.5,  # the student sees the half-size batch
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528, same size
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0),
    mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))  # Caltech ignore regions

# teacher input 960x1280 (2 x 480x640, padded to 32: the half batch is 480x640 exactly)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1280, 960), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1280, 960), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ann_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
