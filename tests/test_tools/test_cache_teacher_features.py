"""tools/cache_teacher_features.py: fills, prints the estimate, resumes, refuses a pipeline that
differs from the training pipeline and an estimate beyond max_gb (nothing written)."""
import importlib.util
import os.path as osp
import sys

import lmdb
import pytest
import torch

from mmdet.registry import MODELS
from mmmimic.models.distillers.teacher_cache import CacheError

REPO = osp.join(osp.dirname(__file__), '..', '..')
sys.path.insert(0, osp.join(REPO, 'tests', 'test_models', 'test_distillers'))
from mimic_test_utils import CACHE_PIPELINE, MIMIC_CFG, make_teacher_ckpt  # noqa: E402

PIPELINE = CACHE_PIPELINE


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'cache_teacher_features', osp.join(REPO, 'tools', 'cache_teacher_features.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(path, tiny_coco, ckpt, cache_dir, cache_pipeline=PIPELINE, max_gb=1.0):
    path.write_text(
        f'_base_ = [{MIMIC_CFG!r}]\n'
        f'train_pipeline = {PIPELINE!r}\n'
        f'train_dataloader = dict(dataset=dict(data_root={tiny_coco!r}, '
        f'pipeline=train_pipeline))\n'
        f'model = dict(teacher_ckpt={ckpt!r}, teacher_cache=dict(dir={str(cache_dir)!r}, '
        f'pipeline={cache_pipeline!r}, max_gb={max_gb!r}))\n')
    return str(path)


def test_cli_fills_resumes_and_the_model_opens_it(tmp_path, tiny_coco, capsys):
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    config = write_config(tmp_path / 'cfg.py', tiny_coco, ckpt, tmp_path / 'cache')
    stats = tool.main([config, '--no-progress', '--device', 'cpu'])
    out = capsys.readouterr().out
    # 16 images x 2 flip states; 64 channels x 6 x 8 cells x 2 bytes = 6144 bytes each
    assert (stats['entries'], stats['written'], stats['skipped']) == (32, 32, 0)
    assert '32 entries (2 augmentation state(s) x 16 images), (64, 6, 8) float16' in out
    assert f'estimate {32 * 6144 / 2**30:.3f} GiB (max_gb 1.0)' in out
    stats = tool.main([config, '--no-progress', '--device', 'cpu'])
    assert (stats['written'], stats['skipped']) == (0, 32)
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(config).model)
    assert model.teacher_cache.complete and len(model.teacher_cache.keys()) == 32
    assert model.teacher_cache.get(model.teacher_cache.keys()[0]).dtype == torch.float16


def test_cli_refuses_mismatched_pipeline_and_oversize(tmp_path, tiny_coco):
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    other = [dict(t) for t in PIPELINE]
    other[3] = dict(type='RandomFlip', prob=1.0)
    config = write_config(tmp_path / 'a.py', tiny_coco, ckpt, tmp_path / 'a', other)
    with pytest.raises(ValueError, match='teacher_cache.pipeline differs from '
                                         'train_dataloader.dataset.pipeline'):
        tool.main([config, '--no-progress', '--device', 'cpu'])
    config = write_config(tmp_path / 'b.py', tiny_coco, ckpt, tmp_path / 'b', max_gb=1e-5)
    with pytest.raises(CacheError, match='exceeds max_gb=1e-05'):
        tool.main([config, '--no-progress', '--device', 'cpu'])
    env = lmdb.open(str(tmp_path / 'b'), readonly=True, lock=False)
    with env.begin() as txn:
        assert [k for k, _ in txn.cursor()] == [b'__identity__']  # no entry written
