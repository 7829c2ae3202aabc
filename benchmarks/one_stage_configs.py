"""mmdet's own RTMDet and YOLOX training configs through the one-flag wrap, as a user runs them.

    python -m benchmarks.one_stage_configs [--out benchmarks/results/one_stage_configs]

Each config is mmdet's as shipped (its pipeline with mosaic, its hooks: ``EMAHook``,
``PipelineSwitchHook`` / ``YOLOXModeSwitchHook``, ``SyncNormHook``; YOLOX's
``BatchSyncRandomResize``) with only the model shrunk (``mmmimic.testing.one_stage``; SyncBN as
BN, no pretrained weights) and the data pointed at generated tiny COCO data (16 train, 6 val
images). The teacher is the same family with a 48-channel neck and head, random weights (this
checks the plumbing, not accuracy). ``wrap_with_teacher(..., student_scale=0.5)`` and the MMEngine
Runner train 2 epochs with validation after each. Written: each run's last logged losses, the
validation keys, and the data preprocessor settings the wrap chose.
"""
import argparse
import json
import os
import os.path as osp
import tempfile

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmmimic  # noqa: F401
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmmimic.apis import wrap_with_teacher
from mmmimic.testing import make_tiny_coco
from mmmimic.testing.one_stage import MMDET_ONE_STAGE, mmdet_config_path, tiny_one_stage

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
FAMILIES = ('rtmdet', 'yolox')


class LastLosses(Hook):
    priority = 'VERY_LOW'

    def __init__(self):
        self.losses, self.metrics = {}, {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses = {k: float(v) for k, v in outputs.items()}

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = {k: float(v) for k, v in (metrics or {}).items()}


def tiny_run_cfg(family: str, data_root: str, work_dir: str, channels: int = 32) -> Config:
    cfg = Config.fromfile(mmdet_config_path(MMDET_ONE_STAGE[family]))
    cfg.model = tiny_one_stage(family, channels)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        dataset = loader.dataset
        if dataset.type != 'CocoDataset':  # YOLOX's MultiImageMixDataset
            dataset = dataset.dataset
        split = 'train' if name.startswith('train') else 'val'
        dataset.update(data_root=data_root, ann_file=f'annotations/{split}.json',
                       data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=('person', )))
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = \
        osp.join(data_root, 'annotations', 'val.json')
    cfg.train_cfg.update(max_epochs=2, val_interval=1)
    cfg.work_dir = work_dir
    cfg.visualizer.name = f'vis_one_stage_configs_{family}'
    return cfg


def run(family: str, tmp: str) -> dict:
    data_root = osp.join(tmp, 'data') + '/'
    if not osp.isfile(osp.join(data_root, 'annotations', 'val.json')):
        make_tiny_coco(data_root, num_images=16, seed=0, split='train')
        make_tiny_coco(data_root, num_images=6, seed=1, split='val')
    teacher = tiny_run_cfg(family, data_root, osp.join(tmp, 'teacher'), channels=48)
    teacher_cfg = osp.join(tmp, f'{family}_teacher.py')
    teacher.dump(teacher_cfg)
    ckpt = osp.join(tmp, f'{family}_teacher.pth')
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(teacher.model).state_dict(), 'meta': {}}, ckpt)
    student = tiny_run_cfg(family, data_root, osp.join(tmp, family))
    cfg = wrap_with_teacher(student, teacher_cfg, ckpt, teacher_check=False, student_scale=0.5)
    runner = Runner.from_cfg(cfg)
    recorder = LastLosses()
    runner.register_hook(recorder)
    runner.train()
    dp = cfg.model.student.data_preprocessor
    return dict(
        hooks=sorted({type(h).__name__ for h in runner.hooks}),
        pad_size_divisor=dp.get('pad_size_divisor'),
        batch_augments=[dict(a) for a in dp.get('batch_augments') or []],
        mimic_levels=[dict(p) for p in cfg.model.mimic_levels],
        last_losses=recorder.losses, last_val=recorder.metrics, epochs=runner.epoch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                                  'one_stage_configs'))
    args = parser.parse_args()
    register_all_modules()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            results[family] = run(family, tmp)
            print(family, json.dumps(results[family]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
