"""The validation sweeps of the vtest study: the mimic weight (lambda1) and the RPN teacher, each
chosen on the VALIDATION split with the run's own stages (same output folder, teacher, cache,
paired initial weights and schedule); the test split is never read.

* :func:`weight_sweep`: per seed, a block's student from scratch and with feature mimic at each
  candidate lambda1; the rule: the lowest mean validation MR-2 over the seeds.
* :func:`teacher_sweep`: every :data:`~.models.TEACHER_CANDIDATES` entry trained with the run's
  teacher stage, validated while it trains, its kept checkpoint re-scored; the rule: the lowest
  validation MR-2 of the kept checkpoint. The choice is reported, not applied.
"""
import glob
import json
import os
import os.path as osp
import shutil
import time
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmmimic.utils.tables import markdown_table
from .common import AP50, MR2, log
from .data import prepare_data
from .job import MainJob
from .models import BY_NAME, REPO_ROOT, TEACHER_CANDIDATES


def write_sweep(stem: str, table: str, out: Dict, *folders: Optional[str]) -> None:
    """Write a sweep's table (``<stem>.md``) and content (``<stem>.json``) into each folder."""
    for folder in filter(None, folders):
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, f'{stem}.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(folder, f'{stem}.json'), 'w') as f:
            json.dump(out, f, indent=1)


def weight_sweep(demo_args, weights: Sequence[float], width: str = '1-2',
                 block: str = 'cross-scale', commit_to: Optional[str] = None) -> Dict:
    """Sweep lambda1 of ``block``'s ``width`` student; ``demo_args``: the run's options
    (:func:`~.options.parse_args`, with ``--blocks block --skip-speed``).

    Writes ``<out>/mimic_sweep/<stem>.{md,json}`` (``sweep``; ``sweep_<block>_<width>`` for any
    other student than the cross-scale 1/2 one; ``_<teacher folder>`` appended for a teacher
    other than the full-size one) and a copy into ``commit_to``. Returns the JSON content."""
    os.makedirs(demo_args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    prepare_data(demo_args)
    job = MainJob(demo_args)
    teacher = job.teacher  # the preset's or --teacher's candidate
    job.train(teacher, demo_args.seeds[0])
    teacher_val = job.evaluate(teacher, demo_args.seeds[0], 'val')[MR2]
    if job.use_cache:
        job.fill_cache()

    prefix = 'xs-' if block == 'cross-scale' else ''
    scratch = BY_NAME[f'{prefix}scratch-{width}']
    mimic = BY_NAME[f'{prefix}mimic-{width}']
    variants = {'scratch': scratch}
    for w in weights:  # the run's own lambda1: its own mimic runs, reused
        variants[f'mimic_w{w:g}'] = mimic if w == job.weight_of(mimic) else \
            replace(mimic, name=f'{mimic.name}_w{w:g}')
    sweep_dir = osp.join(demo_args.out, 'mimic_sweep')
    sweep = MainJob(demo_args, models=[teacher, *variants.values()], root=sweep_dir,
                    mimic_weights={m.name: w for m, w in zip(list(variants.values())[1:],
                                                             weights) if m is not mimic})
    sweep.ckpts.update(job.ckpts)
    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    t0 = time.time()
    for name, m in variants.items():
        runner = job if m in (scratch, mimic) else sweep  # the run's own runs
        for seed in demo_args.seeds:
            runner.train(m, seed)
            metrics = runner.evaluate(m, seed, 'val')
            results.setdefault(name, {})[seed] = {k: metrics[k] for k in (MR2, AP50)
                                                  if k in metrics}
            log(f'{name} seed {seed}: val MR-2 {metrics[MR2]:.1f}')
    means, rows = {}, []
    for name, per_seed in results.items():
        mr = [v[MR2] for v in per_seed.values()]
        ap = [v.get(AP50, float('nan')) for v in per_seed.values()]
        means[name] = float(np.mean(mr))
        rows.append([name, ', '.join(f'{x:.1f}' for x in mr), f'{np.mean(mr):.1f}',
                     f'{np.mean(ap):.1f}'])
    best = min((n for n in means if n != 'scratch'), key=means.get)
    table = '\n'.join([
        f'Validation split, {block} {width} student, teacher {demo_args.teacher!r} '
        f'({teacher.config}), {demo_args.iters} iterations, seeds {list(demo_args.seeds)}; '
        f'teacher val MR-2 {teacher_val:.1f} (checkpoint chosen on validation). Test split not '
        'read.', '',
        markdown_table(rows, ('variant', 'val MR-2 (%) per seed', 'mean MR-2', 'mean AP50 (%)')),
        '', f'Chosen (lowest mean validation MR-2): {best} ({means[best]:.1f}). Sweep wall time '
        f'{(time.time() - t0) / 60:.1f} min.'])
    print(table)
    out = dict(teacher=demo_args.teacher, teacher_val_mr2=teacher_val, results=results,
               means=means, chosen=best, weights=list(weights), iters=demo_args.iters,
               seeds=list(demo_args.seeds), block=block, width=width)
    stem = 'sweep' if (block, width) == ('cross-scale', '1-2') else f'sweep_{block}_{width}'
    if teacher.run_dir:  # another teacher candidate than the full-size one: its own files
        stem += f'_{teacher.run_dir}'
    write_sweep(stem, table, out, sweep_dir, commit_to)
    return out


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
    """The training time the run recorded for the run in ``work_dir``."""
    with open(osp.join(work_dir, 'train_time.json')) as f:
        return json.load(f)['seconds'] / 60


def plot_teacher_curves(curves: Dict[str, List[Tuple[int, float]]], path: str) -> None:
    """Validation MR-2 against iteration, one line per teacher candidate, into ``path``."""
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


def teacher_sweep(demo_args, candidates: Sequence[str],
                  commit_to: Optional[str] = None) -> Dict:
    """Train and validate the teacher ``candidates``; ``demo_args``: the run's options (with
    ``--blocks cross-scale --skip-speed --no-cache``).

    Writes ``<out>/teacher_sweep/teacher_sweep.{md,json,png}`` (the PNG: validation MR-2
    against iteration per candidate) and a copy into ``commit_to``. Returns the JSON content."""
    os.makedirs(demo_args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    prepare_data(demo_args)
    chosen_models = {c: TEACHER_CANDIDATES[c] for c in candidates}
    job = MainJob(demo_args, models=list(chosen_models.values()))
    seed = demo_args.seeds[0]
    t0 = time.time()
    rows, curves = {}, {}
    for name, m in chosen_models.items():
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
    cells = [[name, f'`{r["config"]}`', ', '.join(f'{v:.1f}' for _, v in r['curve']),
              str(r['kept_iter']), f'{r["val_mr2"]:.1f}',
              'n/a' if r['val_ap50'] is None else f'{r["val_ap50"]:.1f}',
              f'{r["train_minutes"]:.0f} min'] for name, r in rows.items()]
    table = '\n'.join([
        f'Validation split (every validation frame, Caltech Reasonable), teacher candidates '
        f'trained {demo_args.teacher_iters} iterations (seed {seed}), validated every '
        f'{interval}, the best checkpoint kept and re-scored. Test split not read.', '',
        markdown_table(cells, ('candidate', 'config', f'validation MR-2 every {interval} it.',
                               'kept (iteration)', 'val MR-2 (%)', 'val AP50 (%)',
                               'training + validations')),
        '', f'Chosen (lowest validation MR-2 of the kept checkpoint): {chosen} '
        f'({rows[chosen]["val_mr2"]:.1f}). Candidates\' training + validations '
        f'{sum(r["train_minutes"] for r in rows.values()):.0f} min in all; this run '
        f'{(time.time() - t0) / 60:.1f} min (finished runs reused).'])
    print(table)
    out = dict(chosen=chosen, candidates=rows, teacher_iters=demo_args.teacher_iters,
               val_interval=interval, seed=seed)
    sweep_dir = osp.join(demo_args.out, 'teacher_sweep')
    os.makedirs(sweep_dir, exist_ok=True)
    with open(osp.join(sweep_dir, 'teacher_sweep.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(sweep_dir, 'teacher_sweep.json'), 'w') as f:
        json.dump(out, f, indent=1)
    plot_teacher_curves(curves, osp.join(sweep_dir, 'teacher_sweep.png'))
    if commit_to:
        os.makedirs(commit_to, exist_ok=True)
        for ext in ('md', 'json', 'png'):
            shutil.copy(osp.join(sweep_dir, f'teacher_sweep.{ext}'), commit_to)
    return out


#: the level rules the mmdet sweep compares (``FeatureMimicDistiller(level_rule=...)``): mmdet's
#: RoI-extractor scale rule, every pair, the finest pair only
LEVEL_RULES = ('scale', 'all', 0)


def _rule_text(rule) -> str:
    return f'pair{rule}' if isinstance(rule, int) else str(rule)


def mmdet_sweep(demo_args, student: str, rules: Sequence = LEVEL_RULES,
                weights: Sequence[float] = (0.1, 1.0, 10.0), first_weight: float = 1.0,
                commit_to: Optional[str] = None) -> Dict:
    """Choose the mmdet block's level rule and mimic weight for ``student`` (``'frcnn'`` or
    ``'retina'``) on the VALIDATION split, coordinate-wise: every rule of ``rules`` at
    ``first_weight``, then every weight of ``weights`` at the chosen rule; the rule each time:
    the lowest mean validation MR-2 over ``demo_args.seeds``. The scratch student is trained
    and scored on the same seeds (the run's own runs, reused by it); the test split is never
    read. The variant at the run's own settings (the config's ``level_rule``, the preset's
    lambda1) is the run's own mimic run, reused by the run.

    Writes ``<out>/mmdet_sweep/sweep_<student>.{md,json}`` and a copy into ``commit_to``.
    Returns the JSON content."""
    os.makedirs(demo_args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    prepare_data(demo_args)
    job = MainJob(demo_args)
    teacher = BY_NAME['mm-teacher']
    scratch, mimic = BY_NAME[f'mm-scratch-{student}'], BY_NAME[f'mm-mimic-{student}']
    sweep_dir = osp.join(demo_args.out, 'mmdet_sweep')
    t0 = time.time()
    results: Dict[str, Dict[int, Dict[str, float]]] = {}

    def score(runner, m, name):
        for seed in demo_args.seeds:
            runner.train(m, seed)
            metrics = runner.evaluate(m, seed, 'val')
            results.setdefault(name, {})[seed] = {k: metrics[k] for k in (MR2, AP50)
                                                  if k in metrics}
            log(f'{name} seed {seed}: val MR-2 {metrics[MR2]:.1f}')
        return float(np.mean([v[MR2] for v in results[name].values()]))

    score(job, scratch, 'scratch')  # needs no teacher: first
    job.train(teacher, demo_args.seeds[0])
    teacher_val = job.evaluate(teacher, demo_args.seeds[0], 'val')[MR2]
    variants, chosen_weights = {}, {}

    def variant(rule, w):
        name = f'{mimic.name}_{_rule_text(rule)}_w{w:g}'
        if name not in variants:
            variants[name] = (rule, w, replace(mimic, name=name,
                                               cfg_options=(('model.level_rule', rule), )))
            chosen_weights[name] = w
        return name, variants[name][2]

    def sweep_job():
        s = MainJob(demo_args, models=[teacher, *(v[2] for v in variants.values())],
                    root=sweep_dir, mimic_weights=chosen_weights)
        s.ckpts.update(job.ckpts)
        return s

    # the run's own settings (the config's level rule, the preset's lambda1): the run's own mimic
    # runs, trained once for the sweep and the run
    from mmengine.config import Config
    own = (Config.fromfile(osp.join(REPO_ROOT, mimic.config)).model.get('level_rule', 'scale'),
           job.weight_of(mimic))

    def run_variant(rule, w):
        name, m = variant(rule, w)
        if name not in means:
            own_run = (rule, float(w)) == (own[0], float(own[1]))
            means[name] = score(job, mimic, name) if own_run else score(sweep_job(), m, name)

    means: Dict[str, float] = {}
    for rule in rules:
        run_variant(rule, first_weight)
    best_rule = variants[min(means, key=means.get)][0]
    for w in weights:
        run_variant(best_rule, w)
    best = min(means, key=means.get)
    rule, weight = variants[best][:2]
    rows = []
    for name, per_seed in results.items():
        mr = [v[MR2] for v in per_seed.values()]
        ap = [v.get(AP50, float('nan')) for v in per_seed.values()]
        r, w = variants[name][:2] if name in variants else ('-', '-')
        rows.append([name, _rule_text(r) if r != '-' else r, f'{w:g}' if w != '-' else w,
                     ', '.join(f'{x:.1f}' for x in mr), f'{np.mean(mr):.1f}',
                     f'{np.mean(ap):.1f}'])
    table = '\n'.join([
        f'Validation split, mmdet block, {mimic.label} ({mimic.config}) against {scratch.label}; '
        f'teacher {teacher.label}, {demo_args.mmdet_teacher_iters} iterations, checkpoint '
        f'chosen on validation (val MR-2 {teacher_val:.1f}); students {demo_args.mmdet_iters} '
        f'iterations, seeds {list(demo_args.seeds)}. Coordinate-wise: the level rules '
        f'{[_rule_text(r) for r in rules]} at lambda1 {first_weight:g}, then lambda1 '
        f'{[float(w) for w in weights]} at the chosen rule. Test split not read.', '',
        markdown_table(rows, ('variant', 'level rule', 'lambda1', 'val MR-2 (%) per seed',
                              'mean MR-2', 'mean AP50 (%)')),
        '', f'Chosen (lowest mean validation MR-2): level_rule={rule!r}, lambda1={weight:g} '
        f'({means[best]:.1f}; scratch {np.mean([v[MR2] for v in results["scratch"].values()]):.1f}'
        f'). Sweep wall time {(time.time() - t0) / 60:.1f} min.'])
    print(table)
    out = dict(student=student, teacher_val_mr2=teacher_val, results=results, means=means,
               chosen=dict(variant=best, level_rule=rule, mimic_weight=weight),
               rules=list(rules), weights=list(weights), first_weight=first_weight,
               iters=demo_args.mmdet_iters, teacher_iters=demo_args.mmdet_teacher_iters,
               seeds=list(demo_args.seeds))
    write_sweep(f'sweep_{student}', table, out, sweep_dir, commit_to)
    return out
