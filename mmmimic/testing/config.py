"""Point a config at a :func:`make_tiny_coco` dataset (tests, quick checks)."""
from mmengine.config import Config


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
