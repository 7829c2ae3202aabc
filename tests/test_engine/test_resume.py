"""Exact resume: an interrupted-then-resumed run equals an uninterrupted one, step for step."""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmmimic.testing import load_tiny_config

CONFIG = 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'


class LossRecorder(Hook):
    priority = 'VERY_LOW'

    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter + 1] = {k: v.item() for k, v in outputs.items()}


def _run(repo_root, data_root, work_dir, name, resume_from=None):
    cfg = load_tiny_config(
        osp.join(repo_root, CONFIG), data_root, work_dir,
        **{'train_cfg.max_iters': 4, 'default_hooks.checkpoint.interval': 2,
           'default_hooks.logger.interval': 1, 'experiment_name': name,
           'visualizer.name': f'vis_{name}'})
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, resume_from
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder.losses


def _assert_nested_equal(a, b, path='state'):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f'{path} differs'
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f'{path} keys differ'
        for k in a:
            _assert_nested_equal(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f'{path} lengths differ'
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_nested_equal(x, y, f'{path}[{i}]')
    else:
        assert a == b, f'{path}: {a} != {b}'


def test_resume_is_exact(repo_root, tiny_coco, tmp_path):
    full_dir, resumed_dir = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    _, full_losses = _run(repo_root, tiny_coco, full_dir, 'full')
    assert sorted(full_losses) == [1, 2, 3, 4]

    runner, resumed_losses = _run(repo_root, tiny_coco, resumed_dir, 'resumed',
                                  resume_from=osp.join(full_dir, 'iter_2.pth'))
    # only iterations 3 and 4 ran after the resume, with the same losses, bit for bit
    assert sorted(resumed_losses) == [3, 4]
    for it in (3, 4):
        assert resumed_losses[it] == full_losses[it], f'iteration {it}'
    assert runner.iter == 4

    full = _load_checkpoint(osp.join(full_dir, 'iter_4.pth'), map_location='cpu')
    resumed = _load_checkpoint(osp.join(resumed_dir, 'iter_4.pth'), map_location='cpu')
    assert full['meta']['iter'] == resumed['meta']['iter'] == 4
    _assert_nested_equal(full['state_dict'], resumed['state_dict'], 'state_dict')
    _assert_nested_equal(full['optimizer'], resumed['optimizer'], 'optimizer')
    _assert_nested_equal(full['param_schedulers'], resumed['param_schedulers'], 'schedulers')
    # the weights really moved: a no-op training would also "resume exactly"
    start = _load_checkpoint(osp.join(full_dir, 'iter_2.pth'), map_location='cpu')
    assert not torch.equal(start['state_dict']['rpn_head.rpn_conv.weight'],
                           full['state_dict']['rpn_head.rpn_conv.weight'])
