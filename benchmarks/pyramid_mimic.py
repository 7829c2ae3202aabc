"""Pyramid mimic on an FPN student: which FPN levels ``loss_mimic`` reaches, and what it costs.

    python -m benchmarks.pyramid_mimic [--out benchmarks/results/pyramid_mimic]

The student is mmdet's Faster R-CNN FPN with a tiny ResNet-18 (the smoke fixture config), the
teacher the same with a 48-channel neck (random weights: neither gradients' presence nor timings
depend on training). Three variants: the single pair of the default mode (the last map, P6),
``mimic_levels='auto'`` with the default ``'scale'`` rule, and with ``'all'``.

1. **Gradient reach**: ``loss_mimic`` alone back-propagated from one training step on random
   images with the sampled RoIs of the step; the L1 norm of the gradient of every FPN output conv
   (``None``: not in the graph).
2. **Cost** (one torch thread, CPU): the mimic machinery alone (connectors, level assignment and
   Eq. 4 on every pair, forward and backward into the student maps, on 256 fixed RoIs) and a
   whole training step (student forward, RPN and RoI losses, live teacher, mimic, backward), each
   the median of repeated runs, at 512x512 and 800x1333, batch 2. Timings hold for this machine
   only; the ratios within one run are what to compare.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List

import torch
from mmengine.config import Config

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmmimic.testing.config import config_path
from mmmimic.testing.distill import make_batch
from mmmimic.utils.tables import markdown_table

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
FPN = config_path('smoke/faster-rcnn_r18-tiny_tiny-coco.py')
VARIANTS = {
    'single pair (P6, default mode)': {},
    "pyramid, level_rule='scale'": dict(mimic_levels='auto'),
    "pyramid, level_rule='all'": dict(mimic_levels='auto', level_rule='all'),
}
SIZES = ((512, 512), (800, 1344))  # 1333 padded to a multiple of 32


def networks():
    student = Config.fromfile(FPN).model
    teacher = copy.deepcopy(student)
    teacher.neck.out_channels = 48
    teacher.rpn_head.in_channels = teacher.rpn_head.feat_channels = 48
    teacher.roi_head.bbox_roi_extractor.out_channels = 48
    teacher.roi_head.bbox_head.in_channels = 48
    return student, teacher


def build(student, teacher, ckpt, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='FeatureMimicDistiller', student=student, teacher=teacher,
                             teacher_ckpt=ckpt, **kwargs))


def gradient_reach(model) -> List:
    inputs, samples = make_batch(num_imgs=2, h=256, w=256)
    model.zero_grad()
    torch.manual_seed(1)
    model.loss(inputs, samples)['loss_mimic'].backward()
    out = []
    for conv in model.student.neck.fpn_convs:
        grad = conv.conv.weight.grad
        out.append(None if grad is None else float(grad.abs().sum()))
    return out


def median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def costs(model, h: int, w: int, reps: int) -> Dict[str, float]:
    inputs, samples = make_batch(num_imgs=2, h=h, w=w)
    with torch.no_grad():
        feats = model.student.extract_feat(inputs)
        teacher_feats = model.teacher.extract_feat(inputs)
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(256, 2, generator=g) * torch.tensor([w * 0.8, h * 0.8])
    wh = 4 + torch.rand(256, 2, generator=g) ** 2 * torch.tensor([w * 0.6, h * 0.6])
    rois = torch.cat([torch.randint(0, 2, (256, 1), generator=g).float(), xy, xy + wh], 1)

    def machinery():
        leaves = [f.detach().requires_grad_() for f in feats]
        if model.mimic_pairs is None:
            loss = model._mimic_loss(leaves, teacher_feats, None, rois)
        else:
            loss = model._pyramid_mimic_loss(leaves, teacher_feats, rois)
        loss.backward()

    def step():
        model.zero_grad()
        losses = model.loss(inputs, samples)
        total = sum(sum(v) if isinstance(v, list) else v
                    for k, v in losses.items() if 'loss' in k)
        total.backward()

    return dict(machinery_ms=median_ms(machinery, 3 * reps), step_ms=median_ms(step, reps))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results', 'pyramid_mimic'))
    parser.add_argument('--reps', type=int, default=5)
    args = parser.parse_args()
    register_all_modules()
    torch.set_num_threads(1)
    student, teacher = networks()
    results = dict(gradient=dict(), cost=dict())
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = osp.join(tmp, 'teacher.pth')
        torch.manual_seed(0)
        torch.save({'state_dict': MODELS.build(teacher).state_dict(), 'meta': {}}, ckpt)
        for name, kwargs in VARIANTS.items():
            model = build(student, teacher, ckpt, **kwargs)
            results['gradient'][name] = gradient_reach(model)
            for h, w in SIZES:
                results['cost'].setdefault(f'{h}x{w}', {})[name] = costs(model, h, w, args.reps)
            print(name, results['gradient'][name], {k: v[name] for k, v in
                                                    results['cost'].items()})
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    levels = ['P2', 'P3', 'P4', 'P5']
    grad_rows = [[name] + ['none' if g is None else f'{g:.3g}' for g in grads]
                 for name, grads in results['gradient'].items()]
    cost_rows = []
    for size, by_name in results['cost'].items():
        single = by_name['single pair (P6, default mode)']
        for name, c in by_name.items():
            cost_rows.append([size, name, f'{c["machinery_ms"]:.1f}', f'{c["step_ms"]:.0f}',
                              f'{100 * c["machinery_ms"] / c["step_ms"]:.1f}%',
                              f'{c["step_ms"] / single["step_ms"]:.2f}x'])
    text = ('# Pyramid mimic on the tiny R-18 FPN Faster R-CNN\n\n'
            '`python -m benchmarks.pyramid_mimic` (docstring: what is measured).\n\n'
            '## Gradient of `loss_mimic` alone on the FPN output convs (L1 norm)\n\n' +
            markdown_table(grad_rows, ['variant'] + [f'fpn_convs ({lv})' for lv in levels]) +
            '\n\nP6 is a max-pool of P5: its gradient reaches `fpn_convs` of P5.\n\n'
            '## Cost (CPU, one thread, batch 2, median ms)\n\n' +
            markdown_table(cost_rows, ['input', 'variant', 'mimic machinery', 'training step',
                                       'machinery share', 'step / single-pair step']) + '\n')
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
