"""What mimic costs a one-stage FPN student: the machinery's share of a training step.

    python -m benchmarks.one_stage_mimic [--out benchmarks/results/one_stage_mimic]

Pairs from mmdet's own configs, 80 classes as on COCO, random weights (timings do not depend on
training; no checkpoint is downloaded: every ``init_cfg`` is dropped), the student initialised as
the Runner does: RetinaNet R-50 FPN -> RetinaNet R-18 FPN (the pair of MMRazor's FPN
distillation figures) and RTMDet-s -> RTMDet-tiny (SyncBN as BN: one process). Pyramid mimic
with ``mimic_levels='auto'`` and the default ``'scale'`` rule; batch 2 at 512x512 and 800x1344
(1333 padded to a multiple of 32), one torch thread, CPU.

Timed in turns (``time_round_robin``), so that load on the shared machine hits all alike:

* **scratch step**: the student alone (mmdet's ``loss``, backward);
* **mimic step**: the distiller's whole step (student, its head losses, the live teacher, the
  detections, sampling, pyramid Eq. 4, backward);
* **machinery**: what mimic adds besides the teacher's forward: the student's post-NMS
  detections (``predict_by_feat``, score_thr 0), assignment and sampling of 128 RoIs per image,
  level assignment, connectors and Eq. 4 on every pair, forward and backward into the maps;
* **teacher forward** (no grad).

Timings hold for this machine only; the ratios within one run are what to compare.
"""
import argparse
import json
import os
import os.path as osp
import tempfile
from typing import Dict

import torch
from mmengine.config import Config

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmmimic.testing.distill import make_batch
from mmmimic.engine.hooks.teacher_check_hook import strip_init_cfg
from mmmimic.testing.one_stage import mmdet_config_path
from mmmimic.utils.tables import markdown_table
from mmmimic.utils.timing import time_round_robin

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
PAIRS = {
    'RetinaNet R-50 -> R-18': ('retinanet/retinanet_r50_fpn_1x_coco.py',
                               'retinanet/retinanet_r18_fpn_1x_coco.py'),
    'RTMDet-s -> RTMDet-tiny': ('rtmdet/rtmdet_s_8xb32-300e_coco.py',
                                'rtmdet/rtmdet_tiny_8xb32-300e_coco.py'),
}
SIZES = ((512, 512), (800, 1344))


def model_cfg(relpath: str):
    """mmdet's model config, no ``init_cfg`` (nothing downloaded), SyncBN as BN."""
    def no_sync(cfg):
        if isinstance(cfg, dict):
            if cfg.get('type') == 'SyncBN':
                cfg['type'] = 'BN'
            for value in cfg.values():
                no_sync(value)
        return cfg
    return no_sync(strip_init_cfg(Config.fromfile(mmdet_config_path(relpath)).model))


def build(teacher_cfg: str, student_cfg: str, ckpt_dir: str):
    torch.manual_seed(0)
    teacher = model_cfg(teacher_cfg)
    ckpt = osp.join(ckpt_dir, 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher).state_dict(), 'meta': {}}, ckpt)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FeatureMimicDistiller', student=model_cfg(student_cfg),
                              teacher=teacher, teacher_ckpt=ckpt, mimic_levels='auto'))
    model.student.init_weights()
    return model


def costs(model, h: int, w: int, rounds: int) -> Dict[str, float]:
    inputs, samples = make_batch(num_imgs=2, h=h, w=w)
    for s in samples:  # boxes spread over the image, at every scale of the pyramid
        s.gt_instances.bboxes = torch.tensor([[0.1 * w, 0.1 * h, 0.2 * w, 0.3 * h],
                                              [0.3 * w, 0.2 * h, 0.7 * w, 0.9 * h]])
    student = model.student
    with torch.no_grad():
        feats = student.extract_feat(inputs)
        outs = student.bbox_head(feats)
        teacher_feats = model.teacher.extract_feat(inputs)

    def backward(losses):
        sum(sum(v) if isinstance(v, list) else v for k, v in losses.items()
            if 'loss' in k).backward()

    def scratch():
        student.zero_grad()
        backward(student.loss(inputs, samples))

    def mimic():
        model.zero_grad()
        backward(model.loss(inputs, samples))

    def machinery():
        leaves = [f.detach().requires_grad_() for f in feats]
        rois = model.sample_rois(model._student_proposals(outs, samples), samples)
        model._pyramid_mimic_loss(leaves, teacher_feats, rois).backward()

    def teacher():
        with torch.no_grad():
            model.teacher.extract_feat(inputs)

    names = ('scratch_step', 'mimic_step', 'machinery', 'teacher_forward')
    timings = time_round_robin([scratch, mimic, machinery, teacher], rounds=rounds, warmup=1,
                               num_threads=1, labels=names)
    return {f'{n}_ms': t.median_ms for n, t in zip(names, timings)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out',
                        default=osp.join(ROOT, 'benchmarks', 'results', 'one_stage_mimic'))
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    register_all_modules()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family, (teacher_cfg, student_cfg) in PAIRS.items():
            model = build(teacher_cfg, student_cfg, tmp)
            for h, w in SIZES:
                results.setdefault(family, {})[f'{h}x{w}'] = c = costs(model, h, w, args.rounds)
                print(family, f'{h}x{w}', {k: round(v, 1) for k, v in c.items()}, flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    rows = [[family, size, f'{c["scratch_step_ms"]:.0f}', f'{c["mimic_step_ms"]:.0f}',
             f'{c["machinery_ms"]:.1f}', f'{c["teacher_forward_ms"]:.0f}',
             f'{100 * c["machinery_ms"] / c["mimic_step_ms"]:.1f}%',
             f'{c["mimic_step_ms"] / c["scratch_step_ms"]:.2f}x']
            for family, by_size in results.items() for size, c in by_size.items()]
    text = ('# Mimic on one-stage FPN students (mmdet RetinaNet and RTMDet configs, 80 classes)\n\n'
            '`python -m benchmarks.one_stage_mimic` (docstring: what is measured).\n\n'
            '## Cost (CPU, one thread, batch 2, median ms, timed in turns)\n\n' +
            markdown_table(rows, ['teacher -> student', 'input', 'scratch step', 'mimic step',
                                  'machinery', 'teacher forward', 'machinery share',
                                  'mimic step / scratch step']) + '\n')
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
