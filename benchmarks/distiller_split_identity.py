"""Bit-identity of mimic training across a refactoring of the distiller or the teacher cache.

    python -m benchmarks.distiller_split_identity --out RESULTS/before.json
    python -m benchmarks.distiller_split_identity --check RESULTS/before.json

(``RESULTS``: benchmarks/results/distiller_split_identity; ``before.json`` was recorded by the
commit that added this script, on the distiller and cache as they were before the split.)

Trains every tiny mimic variant for ``--iters`` SGD steps from a fixed seed on generated tiny COCO
data (one torch thread, fixed batches) and records every loss value (exactly, as ``float.hex``)
and a SHA-256 of the final state dict (student and connector: the teacher is never saved).
``--check`` recomputes them and compares with a recorded file: equal hex strings and hashes mean
bit-identical training. Variants: single-level mimic (Eq. 4), pooled (Eq. 3), whole-map and
logits mimic (Table 4 baselines), cross-scale deconv mimic (Sec. 3.5), two-stage mimic
(Sec. 3.4, Faster R-CNN and R-FCN) and single-level mimic served by the teacher-feature cache
(filled by the fill job first). The numbers hold for one machine and torch build: compare a
``--check`` with a file recorded on the same machine.
"""
import argparse
import copy
import hashlib
import json
import os.path as osp
import tempfile
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import Config

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmmimic.testing.config import config_path
from mmmimic.testing.data import make_tiny_coco, tiny_coco_dataloader_cfg
from mmmimic.testing.tiny_mimic import make_teacher_ckpt

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
MIMIC = config_path('mimic/mimic_rpn_r18-w8_tiny.py')
VARIANTS = {
    'single_level': (MIMIC, {}),
    'pooled': (MIMIC, dict(mimic_loss=dict(type='PooledFeatureL2Loss', loss_weight=1.0))),
    'whole': (config_path('mimic/whole-mimic_rpn_r18-w8_tiny.py'), {}),
    'logits': (config_path('mimic/logits-mimic_rpn_r18-w8_tiny.py'), {}),
    'cross_scale_deconv': (config_path('cross_scale/rpn_r18-w8-deconv_mimic_tiny.py'), {}),
    'two_stage_faster_rcnn': (
        config_path('two_stage_mimic/faster-rcnn_r18-w8_two-stage-mimic_tiny.py'), {}),
    'two_stage_rfcn': (config_path('two_stage_mimic/rfcn_r18-w8_two-stage-mimic_tiny.py'), {}),
    'cached_single_level': (MIMIC, {}),
}
# a training pipeline the teacher cache can serve (fixed resize, horizontal flip)
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]


def variant_config(name: str, data: dict, work: str) -> Config:
    """The variant's full config: model (teacher checkpoint, overrides, the cache) and data."""
    config, overrides = VARIANTS[name]
    cfg = Config.fromfile(config)
    cfg.train_dataloader = tiny_coco_dataloader_cfg(data, batch_size=2, pipeline=PIPELINE)
    cfg.train_pipeline = PIPELINE
    model = cfg.model
    teacher = model.teacher
    if not osp.isabs(teacher):
        teacher = osp.join(osp.dirname(config), teacher)
    model.teacher_ckpt = make_teacher_ckpt(osp.join(work, f'{name}_teacher.pth'),
                                           Config.fromfile(teacher).model)
    for key, value in overrides.items():
        model[key] = value
    if getattr(model.student, 'roi_head', None) is not None:  # no stage-1 checkpoint here
        model.student.backbone.init_cfg = None
        model.student.rpn_head.pop('init_cfg', None)
    if name.startswith('cached'):
        model.teacher_cache = dict(dir=osp.join(work, f'{name}_cache'), pipeline=PIPELINE,
                                   verify=2)
    return cfg


def fill_cache(cfg: Config) -> None:
    """Fill the variant's teacher cache with the library's fill job."""
    try:
        from mmmimic.teacher_cache import fill_cache_from_config
    except ImportError:  # before the cache had its own package
        from mmmimic.models.distillers.teacher_cache import fill_cache_from_config
    fill_cache_from_config(cfg, progress=False, log=lambda msg: None, device='cpu')


def batches(cfg: Config, model, iters: int) -> List[tuple]:
    """``iters`` fixed batches of 2 dataset items (item order and flips from seed 0)."""
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    order = np.random.RandomState(0).permutation(len(dataset) * 2) % len(dataset)
    out = []
    for it in range(iters):
        packed = []
        for j in (2 * it, 2 * it + 1):
            np.random.seed(1000 + j)  # RandomFlip draws from numpy's global generator
            packed.append(dataset[int(order[j])])
        data = model.data_preprocessor(dict(inputs=[p['inputs'] for p in packed],
                                            data_samples=[p['data_samples'] for p in packed]),
                                       True)
        out.append((data['inputs'], data['data_samples']))
    return out


def state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            digest.update(str((value.dtype, tuple(value.shape))).encode())
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8)
                          .numpy().tobytes() if value.numel() else b'')
    return digest.hexdigest()


def train_variant(name: str, data: dict, work: str, iters: int) -> Dict[str, object]:
    cfg = variant_config(name, data, work)
    if name.startswith('cached'):
        fill_cache(cfg)
    torch.manual_seed(0)
    np.random.seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.02,
                                momentum=0.9, weight_decay=1e-4)
    losses = []
    for inputs, samples in batches(cfg, model, iters):
        torch.manual_seed(len(losses))
        step = model.loss(inputs, samples)
        total = 0
        record = {}
        for key, value in sorted(step.items()):
            value = sum(value) if isinstance(value, list) else value
            record[key] = float(value).hex()
            if 'loss' in key:
                total = total + value
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(record)
    return dict(iters=iters, losses=losses, state_dict_sha256=state_hash(model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=4)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--out', help='write the recorded values here (JSON)')
    parser.add_argument('--check', help='compare with the values recorded in this JSON file')
    args = parser.parse_args()
    register_all_modules()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as work:
        data = make_tiny_coco(osp.join(work, 'data'), num_images=8, seed=0, split='train')
        for name in args.variants:
            results[name] = train_variant(name, data, work, args.iters)
            print(name, results[name]['state_dict_sha256'][:16],
                  [r.get('loss_mimic', r.get('loss_mimic_cls')) for r in results[name]['losses']])
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(torch=torch.__version__, variants=results), f, indent=1)
    if args.check:
        with open(args.check) as f:
            recorded = json.load(f)['variants']
        differ = [n for n in results if results[n] != recorded.get(n)]
        print(f'{len(results) - len(differ)}/{len(results)} variants bit-identical to '
              f'{args.check}' + (f'; DIFFER: {differ}' if differ else ''))
        if differ:
            raise SystemExit(1)


if __name__ == '__main__':
    main()
