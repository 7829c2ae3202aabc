"""Resuming never executes a checkpoint's config, and refuses counters and states that do not fit.

Each hostile checkpoint is a real training checkpoint of the tiny smoke detector with one entry
changed. The code-running and hanging ones are first shown to be real under mmengine's own
``Runner.resume``, then resumed (or refused) through ``tools/train.py`` in a subprocess.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from mmmimic.compat.checkpoint import load_checkpoint_file
from mmmimic.compat.resume import _ORIGINAL_RESUME, ResumeCheckpointError
from mmmimic.testing import load_tiny_config
from mmmimic.testing.config import tiny_coco_overrides

CONFIG = 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'


def _cfg(repo_root, data_root, work_dir, max_iters=2):
    cfg = load_tiny_config(
        osp.join(repo_root, CONFIG), data_root, work_dir,
        **{'train_cfg.max_iters': max_iters, 'default_hooks.checkpoint.interval': 2,
           'experiment_name': osp.basename(work_dir),
           'visualizer.name': f'vis_{osp.basename(work_dir)}'})
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


@pytest.fixture(scope='module')
def trained(repo_root, tiny_coco, tmp_path_factory):
    """A genuine iter_2.pth of the tiny detector, and a runner (schedule: 4 iterations)."""
    work_dir = str(tmp_path_factory.mktemp('resume_src'))
    Runner.from_cfg(_cfg(repo_root, tiny_coco, work_dir)).train()
    runner = Runner.from_cfg(
        _cfg(repo_root, tiny_coco, str(tmp_path_factory.mktemp('resume_dst')), max_iters=4))
    return osp.join(work_dir, 'iter_2.pth'), runner


def _variant(src, dst, change):
    ckpt = load_checkpoint_file(src)
    change(ckpt)
    torch.save(ckpt, dst)
    return dst


def _train_tool(repo_root, data_root, work_dir, resume, timeout):
    opts = {**tiny_coco_overrides(data_root), 'train_cfg.max_iters': 3,
            'default_hooks.checkpoint.interval': 3}
    return subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', work_dir, '--resume', resume,
         '--cfg-options', *[f'{k}={v}' for k, v in opts.items()], 'val_cfg=None',
         'val_dataloader=None', 'val_evaluator=None'],
        cwd=repo_root, capture_output=True, text=True, timeout=timeout)


def test_config_in_checkpoint_is_never_executed(repo_root, tiny_coco, trained, tmp_path):
    src, runner = trained
    marker = str(tmp_path / 'marker')
    payload = f'x = open({marker!r}, "w").close()\n'
    path = _variant(src, str(tmp_path / 'payload.pth'),
                    lambda c: c['meta'].__setitem__('config', payload))

    # real: mmengine's own resume executes the string
    _ORIGINAL_RESUME(runner, path)
    assert osp.exists(marker)
    os.remove(marker)

    proc = _train_tool(repo_root, tiny_coco, str(tmp_path / 'run'), path, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert not osp.exists(marker), 'the config stored in the checkpoint ran'
    assert 'resumed epoch: 0, iter: 2' in out
    assert osp.isfile(str(tmp_path / 'run' / 'iter_3.pth'))


def test_iteration_beyond_the_schedule_is_refused_not_a_hang(repo_root, tiny_coco, trained,
                                                             tmp_path):
    src, _ = trained
    path = _variant(src, str(tmp_path / 'far.pth'),
                    lambda c: c['meta'].__setitem__('iter', 10**12))
    # real: with mmengine's own resume the loop skips 10**12 batches
    hang = ('import sys\n'
            'from mmengine.runner import Runner\n'
            'import mmmimic\n'
            'mmmimic.register_all_modules()  # installs the checked resume: undone below\n'
            'from mmmimic.compat.resume import _ORIGINAL_RESUME\n'
            'Runner.resume = _ORIGINAL_RESUME\n'
            'from mmmimic.testing import load_tiny_config\n'
            f'cfg = load_tiny_config({CONFIG!r}, {tiny_coco!r}, {str(tmp_path / "old")!r},\n'
            '                       **{"train_cfg.max_iters": 3})\n'
            'cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None\n'
            f'cfg.resume, cfg.load_from = True, {path!r}\n'
            'Runner.from_cfg(cfg).train()\n')
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, '-c', hang], cwd=repo_root, capture_output=True,
                       timeout=40)

    proc = _train_tool(repo_root, tiny_coco, str(tmp_path / 'run'), path, timeout=120)
    assert proc.returncode != 0
    assert (f"cannot resume from {path}: meta['iter'] is 1000000000000, beyond this run's "
            "schedule (max_iters = 3)") in proc.stderr


@pytest.mark.parametrize('name,change,message', [
    ('no_hub', lambda c: c.pop('message_hub'), "it has no 'message_hub' state"),
    ('no_epoch', lambda c: c['meta'].pop('epoch'), "meta has no 'epoch' counter"),
    ('no_meta', lambda c: c.pop('meta'), 'it has no meta dict'),
    ('bool_iter', lambda c: c['meta'].__setitem__('iter', True), "meta['iter'] is True"),
    ('neg_iter', lambda c: c['meta'].__setitem__('iter', -1), "meta['iter'] is -1"),
    ('torch_rng', lambda c: c['rng_state'].__setitem__('torch', torch.zeros(7, dtype=torch.uint8)),
     "rng_state['torch'] is not a (5056,) torch.uint8 tensor (got torch.Size([7]))"),
    ('python_rng', lambda c: c['rng_state'].__setitem__('python', (3, (1, 2), None)),
     "rng_state['python'] is not a state of Python's random generator"),
    ('numpy_rng', lambda c: c['rng_state'].__setitem__('numpy', ('MT19937', [1, 2], 0, 0, 0.)),
     "rng_state['numpy'] is not a state of numpy's random generator"),
])
def test_bad_entries_are_refused_naming_file_and_entry(trained, tmp_path, name, change, message):
    src, runner = trained
    path = _variant(src, str(tmp_path / f'{name}.pth'), change)
    with pytest.raises(ResumeCheckpointError) as excinfo:
        runner.resume(path)
    assert f'cannot resume from {path}: {message}' in str(excinfo.value)


@pytest.mark.parametrize('name,value,message', [
    ('nan', lambda w: torch.full_like(w, float('nan')),
     'holds 9216 non-finite values (NaN or inf) of 9216'),
    ('meta', lambda w: torch.empty_like(w, device='meta'),
     'is a meta-device tensor (a shape without data)'),
    ('sparse', lambda w: torch.zeros_like(w).to_sparse(),
     'is a torch.sparse_coo tensor, not a dense one'),
])
def test_broken_weights_are_refused(trained, tmp_path, name, value, message):
    src, runner = trained
    key = 'rpn_head.rpn_conv.weight'

    def change(ckpt):
        ckpt['state_dict'][key] = value(ckpt['state_dict'][key])

    path = _variant(src, str(tmp_path / f'{name}.pth'), change)
    with pytest.raises(ValueError) as excinfo:
        runner.resume(path)
    assert f"checkpoint {path}: weight '{key}' {message}" in str(excinfo.value)


def test_genuine_checkpoint_resumes_and_keeps_no_config(trained):
    src, runner = trained
    runner.resume(src)
    assert runner.iter == 2
