"""Runner iterations of stage 2 and two-stage mimic on tiny generated data."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmmimic.testing.distill import build_distiller
from mmengine.runner import Runner
from test_mimic_runner import tiny_runner_cfg
from test_two_stage_mimic import FASTER_CFG, RFCN_CFG, teacher_ckpt_for

from mmmimic.testing.data import make_tiny_coco

MAX_ITERS = 30


def stage1_student_ckpt(path, teacher_ckpt):
    torch.manual_seed(1)
    torch.save({'state_dict': build_distiller(teacher_ckpt, init_weights=True).state_dict()},
               path)
    return path


def informative_teacher_ckpt(config, path):
    """The random tiny teacher with its RoI head's output layers scaled up, so that its logits
    and deltas are far from a freshly initialised student's (a trained teacher's are)."""
    teacher_ckpt_for(config, path)
    ckpt = torch.load(path, weights_only=False)
    for key, value in ckpt['state_dict'].items():
        if key.startswith('roi_head.bbox_head.') and key.endswith('.weight') and any(
                name in key for name in ('fc_cls', 'fc_reg', 'rfcn_cls', 'rfcn_reg')):
            value.mul_(30)
    torch.save(ckpt, path)
    return path


def point_student_at(model_cfg, ckpt):
    model_cfg.backbone.init_cfg.checkpoint = ckpt
    model_cfg.rpn_head.init_cfg.checkpoint = ckpt


def scalars(runner, key):
    return np.asarray(runner.message_hub.get_scalar(f'train/{key}').data[0])


@pytest.mark.parametrize('config', [FASTER_CFG, RFCN_CFG], ids=['faster-rcnn', 'rfcn'])
def test_runner_two_stage_mimic_losses_decrease(config, tmp_path, teacher_ckpt):
    data = make_tiny_coco(str(tmp_path / 'data'), num_images=8, img_size=(96, 128))
    stage1 = stage1_student_ckpt(str(tmp_path / 'stage1.pth'), teacher_ckpt)
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), data, None, MAX_ITERS, config)
    cfg.model.teacher_ckpt = informative_teacher_ckpt(config, str(tmp_path / 'teacher.pth'))
    point_student_at(cfg.model.student, stage1)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={'rpn_head': dict(lr_mult=0.1)})
    runner = Runner.from_cfg(cfg)
    runner.train()
    for key in ('loss_mimic', 'loss_mimic_cls', 'loss_mimic_bbox'):
        values = scalars(runner, key)
        assert len(values) == MAX_ITERS
        first, last = values[:8].mean(), values[-8:].mean()
        print(f'{osp.basename(config)} {key}: first 8 {first:.4f} -> last 8 {last:.4f}')
        assert last < 0.7 * first, (key, values.round(4))
    lrs = sorted({round(group['lr'], 8) for group in runner.optim_wrapper.optimizer.param_groups})
    assert lrs == [0.002, 0.02]  # student.rpn_head.* at 1/10 (paramwise custom_keys)
