"""``import mmmimic`` / ``custom_imports`` register everything; a notebook Runner trains."""
import os.path as osp
import subprocess
import sys

from mmengine.config import Config
from mmengine.runner import Runner

from mmmimic.testing import load_tiny_config


def test_import_registers_into_mmdet_registries():
    code = ('from mmdet.registry import HOOKS\n'
            'assert HOOKS.get("RNGStateHook") is None\n'
            'import mmmimic\n'
            'assert HOOKS.get("RNGStateHook") is not None\n'
            'from mmengine.runner.checkpoint import CheckpointLoader\n'
            'assert CheckpointLoader._schemes[""].__module__ == '
            '"mmmimic.compat.checkpoint"\n')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


def test_custom_imports_in_config_registers(repo_root):
    code = ('from mmengine.config import Config\n'
            'from mmdet.registry import HOOKS\n'
            f'cfg = Config.fromfile({osp.join(repo_root, "configs/_base_/default_runtime.py")!r})\n'
            'assert cfg.custom_imports.imports == ["mmmimic"]\n'
            'assert HOOKS.get("RNGStateHook") is not None\n')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


def test_notebook_runner_from_cfg_trains(repo_root, tiny_coco, tmp_path):
    cfg = load_tiny_config(
        osp.join(repo_root, 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'),
        tiny_coco, str(tmp_path), **{'train_cfg.max_iters': 2,
                                     'default_hooks.checkpoint.interval': 2,
                                     'visualizer.name': 'vis_notebook'})
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    assert isinstance(cfg, Config)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2 and osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))
