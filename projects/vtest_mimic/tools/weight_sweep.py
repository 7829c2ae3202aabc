"""Choose the main job's mimic weight (lambda1) on the VALIDATION split of the vtest benchmark.

The vtest release (tools/dataset_converters/build_vtest.py) carves a validation part (set01) out
of the video after the training part, with a gap; the test part is never read here. The sweep
uses the main job's own stages (``tools/mimic_demo.py``: same output folder, same teacher chosen
on validation, same teacher-feature cache, same paired initial weights and schedule) and trains,
per seed, the headline's cross-scale 1/2-Inception student from scratch (with the deconv; these
runs are the main job's own, reused by it) and with feature mimic at each candidate lambda1 (at
the main job's own lambda1 its own mimic runs are reused),
then scores each on every validation frame (Caltech Reasonable MR-2, AP at IoU 0.5).
``--block same-input`` sweeps the same-input block's student (at the teacher's input) instead.

    python benchmarks/vtest_mimic_sweep.py --quick --weights 0.1 1 10 --seeds 0 1
    python benchmarks/vtest_mimic_sweep.py --block same-input --weights 0.1 1 10 --seeds 0 1

Writes ``<out>/mimic_sweep/sweep.{md,json}`` (``sweep_<block>_<width>`` for any other block or
width than the cross-scale 1/2 student; ``_<teacher folder>`` appended for a ``--teacher`` other
than the full-size one) and, with ``--commit-to``, a copy to commit (the
chosen value goes into ``mmmimic/benchmark/vtest.py::PRESETS``). The rule: the lowest mean
validation MR-2 over the seeds.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from dataclasses import replace

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', 'tools'))
from mimic_demo import AP50, MR2, MainJob, log, parse_args, prepare_data  # noqa: E402

from mmmimic.benchmark import BY_NAME  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', nargs='+', type=float, default=[0.1, 1.0, 10.0])
    parser.add_argument('--width', choices=['1-2', '1-4'], default='1-2')
    parser.add_argument('--block', choices=['cross-scale', 'same-input'], default='cross-scale',
                        help='the block whose mimic student is swept')
    parser.add_argument('--commit-to', help='also write the sweep\'s md/json into this folder')
    args, rest = parser.parse_known_args(argv)
    demo_args = parse_args(rest + ['--blocks', args.block, '--skip-speed'])
    os.makedirs(demo_args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    prepare_data(demo_args)
    job = MainJob(demo_args)
    teacher = job.teacher  # the preset's or --teacher's candidate
    job.train(teacher, demo_args.seeds[0])
    teacher_val = job.evaluate(teacher, demo_args.seeds[0], 'val')[MR2]
    if job.use_cache:
        job.fill_cache()

    prefix = 'xs-' if args.block == 'cross-scale' else ''
    scratch = BY_NAME[f'{prefix}scratch-{args.width}']
    mimic = BY_NAME[f'{prefix}mimic-{args.width}']
    variants = {'scratch': scratch}
    for w in args.weights:  # the main job's own lambda1: its own mimic runs, reused
        variants[f'mimic_w{w:g}'] = mimic if w == job.weight_of(mimic) else \
            replace(mimic, name=f'{mimic.name}_w{w:g}')
    sweep_dir = osp.join(demo_args.out, 'mimic_sweep')
    sweep = MainJob(demo_args, models=[teacher, *variants.values()], root=sweep_dir,
                    mimic_weights={m.name: w for m, w in zip(list(variants.values())[1:],
                                                             args.weights) if m is not mimic})
    sweep.ckpts.update(job.ckpts)
    results = {}
    t0 = time.time()
    for name, m in variants.items():
        runner = job if m in (scratch, mimic) else sweep  # the main job's own runs
        for seed in demo_args.seeds:
            runner.train(m, seed)
            metrics = runner.evaluate(m, seed, 'val')
            results.setdefault(name, {})[seed] = {k: metrics[k] for k in (MR2, AP50)
                                                  if k in metrics}
            log(f'{name} seed {seed}: val MR-2 {metrics[MR2]:.1f}')
    lines = [f'Validation split, {args.block} {args.width} student, teacher '
             f'{demo_args.teacher!r} ({teacher.config}), '
             f'{demo_args.iters} iterations, seeds {list(demo_args.seeds)}; teacher val MR-2 '
             f'{teacher_val:.1f} (checkpoint chosen on validation). Test split not read.', '',
             '| variant | val MR-2 (%) per seed | mean MR-2 | mean AP50 (%) |',
             '|---|---|---|---|']
    means = {}
    for name, per_seed in results.items():
        mr = [v[MR2] for v in per_seed.values()]
        ap = [v.get(AP50, float('nan')) for v in per_seed.values()]
        means[name] = float(np.mean(mr))
        lines.append(f'| {name} | {", ".join(f"{x:.1f}" for x in mr)} | {np.mean(mr):.1f} | '
                     f'{np.mean(ap):.1f} |')
    best = min((n for n in means if n != 'scratch'), key=means.get)
    lines += ['', f'Chosen (lowest mean validation MR-2): {best} ({means[best]:.1f}). Sweep '
              f'wall time {(time.time() - t0) / 60:.1f} min.']
    table = '\n'.join(lines)
    print(table)
    out = dict(teacher=demo_args.teacher, teacher_val_mr2=teacher_val, results=results,
               means=means, chosen=best,
               weights=args.weights, iters=demo_args.iters, seeds=list(demo_args.seeds))
    stem = 'sweep' if (args.block, args.width) == ('cross-scale', '1-2') else \
        f'sweep_{args.block}_{args.width}'
    if teacher.run_dir:  # another teacher candidate than the full-size one: its own files
        stem += f'_{teacher.run_dir}'
    out.update(block=args.block, width=args.width)
    for folder in filter(None, (sweep_dir, args.commit_to)):
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, f'{stem}.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(folder, f'{stem}.json'), 'w') as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main()
