"""Tiny teacher/student fixtures for the distiller tests (mmdet ResNet-18 trunks, stride 16).

Imports the tiny configs of a source checkout (``configs/mimic/tiny``) and registers mmdet's
modules when imported; only the tests import it."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmmimic  # noqa: F401
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

#: the tiny fixture configs shipped in this package
CONFIG_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'configs', 'mimic')
MIMIC_CFG = osp.join(CONFIG_DIR, 'mimic_rpn_r18-w8_tiny.py')
TEACHER_CFG = osp.join(CONFIG_DIR, 'rpn_r18-w16_tiny.py')

register_all_modules()

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


def make_teacher_ckpt(path):
    """A teacher checkpoint with non-trivial BN statistics (the teacher is random otherwise)."""
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(TEACHER_CFG).model)
    for name, buf in teacher.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
    return path


def mimic_model_cfg(teacher_ckpt, config=MIMIC_CFG, **overrides):
    cfg = Config.fromfile(config).model
    cfg.teacher_ckpt = teacher_ckpt
    for key, value in overrides.items():  # replace, not ConfigDict.update's recursive merge
        cfg[key] = value
    return cfg


def build_distiller(teacher_ckpt, config=MIMIC_CFG, init_weights=False, **overrides):
    model = MODELS.build(mimic_model_cfg(teacher_ckpt, config, **overrides))
    if init_weights:  # as the Runner does; logs one line per parameter
        model.init_weights()
    return model


def make_batch(num_imgs=2, h=96, w=128, seed=0):
    """Normalised-looking images and data samples with two upright boxes each."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(num_imgs):
        s = DetDataSample(metainfo=dict(
            img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
            batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 10., 40., 80.], [70., 20., 100., 90.]]),
            labels=torch.tensor([0, 0]))
        samples.append(s)
    return torch.randn(num_imgs, 3, h, w, generator=g), samples
