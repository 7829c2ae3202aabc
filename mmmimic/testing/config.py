"""The tiny fixture configs shipped in ``mmmimic/testing/configs``, and how to point a config at
a :func:`make_tiny_coco` dataset (tests, quick checks)."""
import os.path as osp

from mmengine.config import Config

#: the folder of the tiny fixture configs (``smoke/``, ``mimic/``, ``cross_scale/``, ``stage2/``,
#: ``two_stage_mimic/`` and their ``_base_/``); they ship with the package.
CONFIG_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')


def config_path(relpath: str) -> str:
    """Absolute path of a fixture config, e.g. ``config_path('mimic/rpn_r18-w16_tiny.py')``.

    Raises:
        FileNotFoundError: no such file under :data:`CONFIG_ROOT`.
    """
    path = osp.join(CONFIG_ROOT, relpath)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no fixture config {relpath!r} in {CONFIG_ROOT}')
    return path


def tiny_coco_overrides(data_root: str) -> dict:
    """``--cfg-options``-style overrides that point every dataloader/evaluator at ``data_root``."""
    data_root = data_root.rstrip('/') + '/'
    ann = data_root + 'annotations/val.json'
    return {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'val_evaluator.ann_file': ann,
        'test_evaluator.ann_file': ann,
    }


def load_tiny_config(path: str, data_root: str, work_dir: str, **extra) -> Config:
    """Load ``path`` with its data pointed at ``data_root`` and the given extra overrides."""
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({**tiny_coco_overrides(data_root), **extra})
    cfg.work_dir = work_dir
    return cfg
