"""Choose the mimic hyper-parameters of the built-in benchmark on its VALIDATION split.

The vtest release (tools/dataset_converters/build_vtest.py) carves a validation part (set01) out of
the training frames, after a 3 s gap; the test part is never looked at here. Each variant trains a
1/2-Inception RPN student on the training frames (same seed, same schedule as the scratch twin)
and is scored on every validation frame with CaltechMRMetric (Reasonable MR-2) and proposal recall.

Run after ``python tools/mimic_demo.py --quick`` has built the data and trained the teacher:

    python benchmarks/vtest_mimic_sweep.py --teacher work_dirs/mimic_demo/seed0/teacher/iter_600.pth

Prints one table (variant x seed) and writes it to ``<out>/sweep.md`` / ``sweep.json``.
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np

from mmmimic.benchmark import vtest_train_config

SCRATCH = 'configs/vtest/rpn_inception-1-2_vtest.py'
MIMIC = 'configs/vtest/rpn_inception-1-2_mimic-inception_vtest.py'
#: name -> (config, iterations, mimic loss weight or None)
VARIANTS = {
    'scratch_300': (SCRATCH, 300, None),
    'mimic_w1_300': (MIMIC, 300, 1.0),
    'mimic_w0.1_300': (MIMIC, 300, 0.1),
    'scratch_600': (SCRATCH, 600, None),
    'mimic_w1_600': (MIMIC, 600, 1.0),
    'mimic_w0.1_600': (MIMIC, 600, 0.1),
}


def run_variant(name, args, seed):
    from mmengine.runner import Runner
    config, iters, weight = VARIANTS[name]
    work_dir = osp.join(args.out, f'seed{seed}', name)
    out_json = osp.join(work_dir, 'val_metrics.json')
    if osp.isfile(out_json):
        with open(out_json) as f:
            return json.load(f)
    teacher = args.teacher if weight is not None else None
    cfg = vtest_train_config(config, args.data_dir, seed, work_dir, iters, 1, teacher)
    if weight is not None:
        cfg.model.mimic_loss.loss_weight = weight
    t0 = time.time()
    Runner.from_cfg(cfg).train()
    train_s = time.time() - t0
    cfg = vtest_train_config(config, args.data_dir, seed, work_dir, iters, 1, teacher)
    cfg.test_dataloader.dataset.ann_file = 'vtest_val.txt'  # validation frames only
    cfg.load_from = osp.join(work_dir, f'iter_{iters}.pth')
    cfg.experiment_name += '_val'
    cfg.visualizer.name += '_val'
    metrics = {k: float(v) for k, v in Runner.from_cfg(cfg).test().items()}
    metrics['train_seconds'] = train_s
    with open(out_json, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--teacher', required=True, help='trained vtest teacher checkpoint')
    parser.add_argument('--data-dir', default='data/vtest')
    parser.add_argument('--out', default='work_dirs/vtest_mimic_sweep')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    import mmmimic  # noqa: F401
    results = {v: {s: run_variant(v, args, s) for s in args.seeds} for v in args.variants}
    lines = ['| variant | val MR-2 (%) per seed | mean | val recall@300 IoU.7 (%) mean |',
             '|---|---|---|---|']
    for v, per_seed in results.items():
        mr = [m['caltech/Reasonable_MR-2'] for m in per_seed.values()]
        rec = [m['proposal/recall@300_iou70'] for m in per_seed.values()]
        lines.append(f'| {v} | {", ".join(f"{x:.1f}" for x in mr)} | {np.mean(mr):.1f} | '
                     f'{np.mean(rec):.1f} |')
    table = '\n'.join(lines)
    print(table)
    with open(osp.join(args.out, 'sweep.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.out, 'sweep.json'), 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    sys.exit(main())
