# Table 10, row "mimic + deconv" (paper Sec. 3.5, cross-scale mimic): the student of
# ./rpn_inception-1-2-deconv_1xb2-40k_caltech-480x640.py sees the batch at half size (480x640) while the
# Inception RPN teacher sees it at 960x1280 (the data pipeline's size; 1000 short side would give
# 500x667 for the student); the student's upsampled map (stride 8 on 480x640 = stride 16 on
# 960x1280, same size as the teacher's inception_4d map) mimics it through a 1x1 connector in the
# 128 sampled RoIs, mapped x2 to the teacher's pixels. At test time the student runs on the
# half-size image and its boxes come back in original coordinates. The exported student
# (extract_student.py) carries ScaledInputDataPreprocessor(input_scale=0.5): tested on this
# config's full-size data it gives the distiller's detections (the control's 480x640 data also
# works with the control config).
_base_ = './rpn_inception-1-2-deconv_1xb2-40k_caltech-480x640.py'

model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../inception/rpn_inception_1xb2-40k_caltech.py',
    teacher_ckpt='work_dirs/rpn_inception_1xb2-40k_caltech/iter_40000.pth',
    student_input_scale=0.5,
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
