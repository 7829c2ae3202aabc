"""Tiny teacher/student fixtures for the distiller tests (mmdet ResNet-18 trunks, stride 16).

Registers mmdet's modules when imported; only the tests import it."""
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmmimic  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

from mmmimic.testing.tiny_mimic import (CACHE_PIPELINE, CONFIG_DIR, MIMIC_CFG,  # noqa: F401
                                        TEACHER_CFG, cache_batch, make_teacher_ckpt)

register_all_modules()


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
