"""Tiny teacher/student fixtures shared by the distiller and teacher-cache tests (mmdet ResNet-18
trunks, stride 16): the tiny mimic configs, a teacher checkpoint with non-trivial BN statistics,
and a training pipeline (with its batches) the teacher-feature cache can serve."""
import copy
import os.path as osp

import torch
from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS

from mmmimic.testing.config import CONFIG_ROOT

#: the tiny mimic fixture configs shipped in this package
CONFIG_DIR = osp.join(CONFIG_ROOT, 'mimic')
MIMIC_CFG = osp.join(CONFIG_DIR, 'mimic_rpn_r18-w8_tiny.py')
TEACHER_CFG = osp.join(CONFIG_DIR, 'rpn_r18-w16_tiny.py')

# A training pipeline the teacher-feature cache can serve (fixed resize, horizontal flip).
CACHE_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]


def cache_batch(cfg, model, flips=(False, True)):
    """Training samples 0, 1, ... of ``cfg``'s dataset, sample ``i`` flipped as ``flips[i]``,
    through ``model``'s data preprocessor: ``(inputs, data_samples)`` as the cache keys them."""
    packed = []
    for i, flip in enumerate(flips):
        pipeline = copy.deepcopy(CACHE_PIPELINE)
        pipeline[3] = dict(type='RandomFlip', prob=float(flip))
        dataset = DATASETS.build(dict(copy.deepcopy(cfg.train_dataloader.dataset),
                                      pipeline=pipeline))
        packed.append(dataset[i])
    data = model.data_preprocessor(dict(inputs=[p['inputs'] for p in packed],
                                        data_samples=[p['data_samples'] for p in packed]), True)
    return data['inputs'], data['data_samples']


def make_teacher_ckpt(path, model_cfg=None):
    """A teacher checkpoint with non-trivial BN statistics (the teacher is random otherwise):
    the tiny RPN teacher of ``TEACHER_CFG``, or the model of ``model_cfg``."""
    torch.manual_seed(0)
    teacher = MODELS.build(model_cfg if model_cfg is not None else
                           Config.fromfile(TEACHER_CFG).model)
    for name, buf in teacher.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
    return path
