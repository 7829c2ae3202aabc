"""Mimic training through mmengine's Runner on tiny generated data."""
import os.path as osp

import numpy as np
import torch
from mmmimic.testing.distill import MIMIC_CFG
from mmengine.config import Config
from mmengine.runner import Runner

from mmmimic.testing.data import make_tiny_coco, tiny_coco_dataloader_cfg

MAX_ITERS = 30


def tiny_runner_cfg(work_dir, data, teacher_ckpt, max_iters=MAX_ITERS, config=MIMIC_CFG):
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.work_dir = work_dir
    cfg.train_dataloader = tiny_coco_dataloader_cfg(data, batch_size=2)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.val_dataloader = cfg.test_dataloader = None
    cfg.val_cfg = cfg.test_cfg = cfg.val_evaluator = cfg.test_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10**6)
    cfg.param_scheduler = []
    cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=max_iters)
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    cfg.randomness = dict(seed=0)
    return cfg


def test_runner_mimic_training_decreases_loss_and_saves_student_only(tmp_path, teacher_ckpt):
    data = make_tiny_coco(str(tmp_path / 'data'), num_images=8, img_size=(96, 128))
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), data, teacher_ckpt)
    runner = Runner.from_cfg(cfg)
    teacher_before = {k: v.clone() for k, v in runner.model.teacher.state_dict().items()}
    runner.train()

    mimic = np.asarray(runner.message_hub.get_scalar('train/loss_mimic').data[0])
    assert len(mimic) == MAX_ITERS
    first, last = mimic[:8].mean(), mimic[-8:].mean()
    print(f'loss_mimic first 8 iters {first:.4f} -> last 8 iters {last:.4f}: {mimic.round(4)}')
    assert last < 0.7 * first
    for k, v in runner.model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k

    ckpt_path = osp.join(cfg.work_dir, f'iter_{MAX_ITERS}.pth')
    ckpt = torch.load(ckpt_path, weights_only=False)
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])
    assert any(k.startswith('student.') for k in ckpt['state_dict'])

    # resume from the student-only checkpoint: the teacher comes from its own checkpoint again
    cfg2 = tiny_runner_cfg(str(tmp_path / 'work'), data, teacher_ckpt, max_iters=MAX_ITERS + 2)
    cfg2.resume = True
    cfg2.load_from = ckpt_path
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()
    assert runner2.iter == MAX_ITERS + 2
    for k, v in runner2.model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
