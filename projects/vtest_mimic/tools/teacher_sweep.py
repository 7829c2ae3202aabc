"""Choose the main job's RPN teacher on the VALIDATION split of the vtest benchmark.

The candidates (``mmmimic.benchmark.TEACHER_CANDIDATES``) differ in what the teacher sees while
it trains (the network is the same; the anchors follow the input scale):

* ``full``: the main job's own teacher, the full-width Inception RPN on the full-size 640x480
  frames (its run is the main job's, reused);
* ``x2``: the same network on the frames upscaled x2 (1280x960: the paper's Sec. 3.5 teacher sees
  a ~1000 px short side), anchors doubled with the people, trained on 320x384 crops of the
  upscaled frames (the same cost per iteration);
* ``jitter``: the full-size frames with scale jitter (x0.8-1.25) and photometric distortion
  before the same crops and flips (tested on the plain full-size frames).

Each candidate trains with the main job's teacher stage (``tools/mimic_demo.py``: same schedule,
seed, data and output folder), is validated every ``--teacher-val-interval`` iterations on every
validation frame and keeps its best checkpoint; that checkpoint is then re-scored on the
validation split. The rule: the candidate whose kept checkpoint has the lowest validation MR-2
(Caltech Reasonable); AP at IoU 0.5 is reported beside it. The test split is never read.

    python benchmarks/vtest_teacher_sweep.py --commit-to benchmarks/results/vtest_teacher_sweep

Writes ``<out>/teacher_sweep/teacher_sweep.{md,json,png}`` (the PNG: validation MR-2 against
iteration per candidate) and, with ``--commit-to``, a copy to commit. Every main-job option
(``--out``, ``--teacher-iters``, ``--video``, ...) is accepted. When a candidate other than
``full`` wins, the main job's teacher has to move to it (for ``x2`` the students' input sizes and
the cache with it) and every stage after it be re-run: the choice is reported, not applied.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', 'tools'))
from mimic_demo import AP50, MR2, MainJob, log, parse_args, prepare_data  # noqa: E402

from mmmimic.benchmark import TEACHER_CANDIDATES  # noqa: E402


def validation_curve(work_dir: str, interval: int) -> List[Tuple[int, float]]:
    """``(iteration, validation MR-2)`` of every validation a teacher run logged, in order (an
    interrupted and resumed run continues its count).

    Raises:
        ValueError: ``work_dir`` logged no validation.
    """
    values = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if MR2 in entry:
                    values.append(float(entry[MR2]))
    if not values:
        raise ValueError(f'{work_dir}: no validation MR-2 ({MR2}) in any '
                         '<timestamp>/vis_data/scalars.json')
    return [((i + 1) * interval, v) for i, v in enumerate(values)]


def kept_iteration(ckpt: str) -> int:
    """The iteration of a ``best_<metric>_iter_<N>.pth`` checkpoint."""
    return int(osp.splitext(ckpt)[0].rsplit('_', 1)[1])


def train_minutes(work_dir: str) -> float:
    """The training time the main job recorded for the run in ``work_dir``."""
    with open(osp.join(work_dir, 'train_time.json')) as f:
        return json.load(f)['seconds'] / 60


def plot_curves(curves: Dict[str, List[Tuple[int, float]]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(*zip(*curve), marker='o', label=name)
    ax.set_xlabel('teacher training iteration')
    ax.set_ylabel('validation MR-2 (%, Reasonable)')
    ax.set_title('vtest teacher candidates (validation split)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--candidates', nargs='+', choices=list(TEACHER_CANDIDATES),
                        default=list(TEACHER_CANDIDATES))
    parser.add_argument('--commit-to', help='also write the sweep\'s md/json/png into this folder')
    args, rest = parser.parse_known_args(argv)
    demo_args = parse_args(rest + ['--blocks', 'cross-scale', '--skip-speed', '--no-cache'])
    os.makedirs(demo_args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    prepare_data(demo_args)
    candidates = {c: TEACHER_CANDIDATES[c] for c in args.candidates}
    job = MainJob(demo_args, models=list(candidates.values()))
    seed = demo_args.seeds[0]
    t0 = time.time()
    rows, curves = {}, {}
    for name, m in candidates.items():
        ckpt = job.train(m, seed)
        metrics = job.evaluate(m, seed, 'val')
        curve = validation_curve(job.work_dir(m, seed), demo_args.teacher_val_interval)
        curves[name] = curve
        rows[name] = dict(run_dir=m.run_dir or m.name, config=m.config,
                          checkpoint=osp.basename(ckpt), kept_iter=kept_iteration(ckpt),
                          val_mr2=metrics[MR2], val_ap50=metrics.get(AP50), curve=curve,
                          train_minutes=train_minutes(job.work_dir(m, seed)))
        log(f'{name} ({m.config}): kept iteration {rows[name]["kept_iter"]}, val MR-2 '
            f'{metrics[MR2]:.1f}')
    chosen = min(rows, key=lambda n: rows[n]['val_mr2'])
    interval = demo_args.teacher_val_interval
    lines = [f'Validation split (every validation frame, Caltech Reasonable), teacher candidates '
             f'trained {demo_args.teacher_iters} iterations (seed {seed}), validated every '
             f'{interval}, the best checkpoint kept and re-scored. Test split not read.', '',
             f'| candidate | config | validation MR-2 every {interval} it. | kept (iteration) '
             '| val MR-2 (%) | val AP50 (%) | training + validations |',
             '|---|---|---|---|---|---|---|']
    for name, r in rows.items():
        ap = 'n/a' if r['val_ap50'] is None else f'{r["val_ap50"]:.1f}'
        lines.append(f'| {name} | `{r["config"]}` | '
                     f'{", ".join(f"{v:.1f}" for _, v in r["curve"])} | {r["kept_iter"]} | '
                     f'{r["val_mr2"]:.1f} | {ap} | {r["train_minutes"]:.0f} min |')
    lines += ['', f'Chosen (lowest validation MR-2 of the kept checkpoint): {chosen} '
              f'({rows[chosen]["val_mr2"]:.1f}). Candidates\' training + validations '
              f'{sum(r["train_minutes"] for r in rows.values()):.0f} min in all; this run '
              f'{(time.time() - t0) / 60:.1f} min (finished runs reused).']
    table = '\n'.join(lines)
    print(table)
    out = dict(chosen=chosen, candidates=rows, teacher_iters=demo_args.teacher_iters,
               val_interval=interval, seed=seed)
    sweep_dir = osp.join(demo_args.out, 'teacher_sweep')
    os.makedirs(sweep_dir, exist_ok=True)
    with open(osp.join(sweep_dir, 'teacher_sweep.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(sweep_dir, 'teacher_sweep.json'), 'w') as f:
        json.dump(out, f, indent=1)
    plot_curves(curves, osp.join(sweep_dir, 'teacher_sweep.png'))
    if args.commit_to:
        os.makedirs(args.commit_to, exist_ok=True)
        for ext in ('md', 'json', 'png'):
            shutil.copy(osp.join(sweep_dir, f'teacher_sweep.{ext}'), args.commit_to)
    return out


if __name__ == '__main__':
    main()
