"""The main job on built-in real data: teacher, mimic students and scratch students on vtest.avi.

One command builds the pedestrian benchmark from OpenCV's sample video ``vtest.avi`` (classical,
model-independent labels, written as a Caltech-format release and converted with the same
converter a Caltech user runs), trains

* the teacher: full-width Inception RPN from scratch,
* 1/2- and 1/4-Inception RPN students with proposal-sampled feature mimic (Eq. 4) of the teacher,
* the same students from scratch, with the identical schedule and seed,

evaluates every model with ``CaltechMRMetric`` (MR-2, MR-4) and ``ProposalRecallMetric``, measures
inference speed and parameters, and writes ``report.md``, ``results.json``, an MR-FPPI plot and a
speed table into the output folder. Finished stages are reused (``--force`` redoes them).

Examples::

    python tools/mimic_demo.py --quick                 # <= 30 min on 2 CPU cores
    python tools/mimic_demo.py --quick --seeds 0 1 2   # the README table
    python tools/mimic_demo.py                         # full preset (bigger machine / GPU)

These are NOT Caltech numbers: one static campus scene, labels from a classical procedure
(docs/vtest_labels.md).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmmimic.benchmark import (MODELS, PRESETS, TEST_SET, speed_config, speed_configs,
                               vtest_train_config)
from mmmimic.datasets.caltech_converter import convert_caltech
from mmmimic.evaluation.functional.caltech_results import score_result_dirs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def log(msg: str) -> None:
    print(f'[mimic_demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run_tool(args: Sequence[str]) -> None:
    cmd = [sys.executable, *args]
    log('$ ' + ' '.join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)


# ----------------------------------------------------------------------------- 1. data
def prepare_data(args) -> str:
    """Build the vtest Caltech-format release (cached) and convert it into ``args.data_dir``."""
    release = osp.join(args.out, 'vtest_release')
    build = ['tools/dataset_converters/build_vtest.py', '--out', release]
    if args.video:
        build += ['--video', args.video]
    if args.gap is not None:
        build += ['--gap', str(args.gap)]
    if args.force_data:
        build.append('--force')
    run_tool(build)
    if args.force_data and osp.isdir(args.data_dir):
        shutil.rmtree(args.data_dir)
    convert_caltech(release, args.data_dir, presets=('vtest_train', 'vtest_val', 'vtest_test'),
                    progress=True)
    return release


# ----------------------------------------------------------------------------- 2. train
def model_cfg(config: str, args, seed: int, work_dir: str, teacher_ckpt: Optional[str] = None,
              iters: Optional[int] = None):
    return vtest_train_config(config, args.data_dir, seed, work_dir, iters or args.iters,
                              args.workers, teacher_ckpt)


def model_iters(name: str, args) -> int:
    return args.teacher_iters if name == 'teacher' else args.iters


def train_model(name: str, config: str, args, seed: int, teacher_ckpt: Optional[str]) -> str:
    """Train one model unless its final checkpoint exists; returns the checkpoint path."""
    from mmengine.runner import Runner
    work_dir = osp.join(args.out, f'seed{seed}', name)
    iters = model_iters(name, args)
    final = osp.join(work_dir, f'iter_{iters}.pth')
    if osp.isfile(final) and name not in args.force:
        log(f'{name} (seed {seed}): reusing {final}')
        return final
    if name in args.force and osp.isdir(work_dir):
        shutil.rmtree(work_dir)
    cfg = model_cfg(config, args, seed, work_dir, teacher_ckpt, iters)
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))  # continue an interrupted run
    log(f'training {name} (seed {seed}, {iters} iterations) -> {work_dir}')
    t0 = time.time()
    Runner.from_cfg(cfg).train()
    with open(osp.join(work_dir, 'train_time.json'), 'w') as f:
        json.dump(dict(seconds=time.time() - t0), f)
    return final


# ----------------------------------------------------------------------------- 3. evaluate
def evaluate_model(name: str, config: str, ckpt: str, args, seed: int,
                   teacher_ckpt: Optional[str]) -> Dict[str, float]:
    from mmengine.runner import Runner
    work_dir = osp.join(args.out, f'seed{seed}', name)
    out_json = osp.join(work_dir, 'test_metrics.json')
    if osp.isfile(out_json) and name not in args.force and not args.force_eval:
        with open(out_json) as f:
            return json.load(f)
    cfg = model_cfg(config, args, seed, work_dir, teacher_ckpt, model_iters(name, args))
    results_root = osp.join(args.out, f'seed{seed}', 'results')
    for ev in cfg.test_evaluator:
        if ev['type'] == 'CaltechMRMetric':
            ev.update(save_result_files=True, algorithm=name, outfile_prefix=results_root)
    cfg.load_from = ckpt
    cfg.experiment_name += '_test'
    cfg.visualizer.name += '_test'
    log(f'testing {name} (seed {seed}) on {args.data_dir} test frames')
    metrics = Runner.from_cfg(cfg).test()
    metrics = {k: float(v) for k, v in metrics.items()}
    with open(out_json, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


# ----------------------------------------------------------------------------- 4. speed
def measure_speed(args) -> Dict[str, Dict[str, float]]:
    """Params, FLOPs and CPU latency (at the test frames' 480x640), ratios to the teacher."""
    out_dir = osp.join(args.out, 'speed')
    out_json = osp.join(out_dir, 'speed.json')
    if osp.isfile(out_json) and not args.force_speed:
        with open(out_json) as f:
            return json.load(f)
    configs = speed_configs()
    run_tool(['tools/analysis_tools/benchmark_speed.py', *configs, '--shapes', args.speed_shape,
              '--runs', str(args.speed_runs), '--warmup', '1', '--out-dir', out_dir])
    import csv
    with open(osp.join(out_dir, 'speed.csv')) as f:
        rows = list(csv.DictReader(f))
    by_config = dict(zip(configs, rows))  # rows are in the order of the configs given
    speed = {}
    for m in MODELS:
        row = {k: _num(v) for k, v in by_config[speed_config(m)].items()}
        shape = args.speed_shape
        speed[m.name] = dict(params_m=row['params_M'], param_ratio=row['param_ratio'],
                           gflops=row.get(f'GFLOPs@{shape}'), latency_ms=row[f'ms@{shape}'],
                           speedup=row[f'speedup@{shape}'])
    with open(out_json, 'w') as f:
        json.dump(speed, f, indent=1)
    return speed


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


# ----------------------------------------------------------------------------- 5. report
def score_and_plot(args, seeds: Sequence[int]) -> Dict[str, Dict]:
    """Re-score the saved result files offline (the scoring tool) and plot all MR-FPPI curves."""
    from mmmimic.evaluation.functional.caltech_plot import plot_mr_fppi
    seed = seeds[0]
    res_root = osp.join(args.out, f'seed{seed}', 'results', 'res')
    names = [m.name for m in MODELS]
    # the converted bbGt files + the test list: exactly the frames the metric scored
    scored = score_result_dirs([osp.join(res_root, n) for n in names],
                               osp.join(args.data_dir, 'annotations'),
                               settings=('Reasonable', ), sets=(TEST_SET, ),
                               img_list=osp.join(args.data_dir, 'vtest_test.txt'), names=names)
    labels = {m.name: m.label for m in MODELS}
    curves = [(labels[n], r['Reasonable']['fppi'], r['Reasonable']['miss_rate'],
               r['Reasonable']['MR-2']) for n, r in scored.items()]
    plot_mr_fppi(curves, osp.join(args.out, 'mr_fppi.png'),
                 title=f'vtest.avi test frames, Reasonable (seed {seed})')
    return scored


def summarise(results: Dict[int, Dict[str, Dict[str, float]]], speed: Dict) -> List[Dict]:
    rows = []
    for m in MODELS:
        per_seed = [results[s][m.name] for s in sorted(results)]

        def stat(key):
            vals = np.array([m[key] for m in per_seed if key in m], dtype=float)
            return (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    vals.tolist())

        sp = speed.get(m.name, {})
        rows.append(dict(
            name=m.name, label=m.label, params_m=sp.get('params_m'),
            speedup=sp.get('speedup'), latency_ms=sp.get('latency_ms'),
            mr2=stat('caltech/Reasonable_MR-2'), mr4=stat('caltech/Reasonable_MR-4'),
            recall_05=stat('proposal/recall@300_iou50'),
            recall_07=stat('proposal/recall@300_iou70')))
    return rows


def _fmt_stat(s, digits=2):
    mean, std, vals = s
    if len(vals) > 1:
        return f'{mean:.{digits}f} ± {std:.{digits}f}'
    return f'{mean:.{digits}f}'


def markdown_table(rows: List[Dict]) -> str:
    lines = ['| model | params (M) | speed-up | MR-2 (%) | MR-4 (%) | recall@300 IoU.5 (%) | '
             'recall@300 IoU.7 (%) |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        params = f'{r["params_m"]:.2f}' if isinstance(r['params_m'], float) else '-'
        speedup = f'{r["speedup"]:.2f}x' if isinstance(r['speedup'], float) else '-'
        lines.append(f'| {r["label"]} | {params} | {speedup} | {_fmt_stat(r["mr2"])} | '
                     f'{_fmt_stat(r["mr4"])} | {_fmt_stat(r["recall_05"], 1)} | '
                     f'{_fmt_stat(r["recall_07"], 1)} |')
    return '\n'.join(lines)


def gap_closed(rows: List[Dict], width: str) -> Optional[float]:
    """Fraction of the scratch-to-teacher MR-2 gap that the mimic student closes."""
    by = {r['name']: r['mr2'][0] for r in rows}
    teacher, mimic, scratch = by['teacher'], by[f'mimic-{width}'], by[f'scratch-{width}']
    if scratch - teacher <= 0:
        return None
    return (scratch - mimic) / (scratch - teacher)


def write_report(args, rows, seeds, train_times) -> str:
    table = markdown_table(rows)
    lines = [
        '# mmmimic built-in benchmark: feature mimic on vtest.avi', '',
        f'Command: `python tools/mimic_demo.py {" ".join(args.argv)}`', '',
        f'Seeds: {list(seeds)} (mean ± sample std over seeds'
        + ('; one teacher, trained with the first seed, shared by all seeds' if args.shared_teacher
           else '') + f'). Students: {args.iters} iterations of batch 2 (320x384 crops), '
        'identical schedule and seed for mimic and scratch; teacher: '
        f'{args.teacher_iters} iterations. Test: whole 640x480 test frames (every 2nd frame of '
        'the test part), Caltech Reasonable setting. Speed: CPU latency at '
        f'{args.speed_shape}, batch 1, median of {args.speed_runs} interleaved runs, relative to '
        'the teacher.', '', table, '']
    for w in ('1-2', '1-4'):
        g = gap_closed(rows, w)
        txt = 'n/a (scratch student not worse than the teacher)' if g is None else f'{g:.0%}'
        lines.append(f'- MR-2 gap scratch -> teacher closed by the 1/{w[2]} mimic student: {txt}')
    lines += ['', f'Training wall time per model (s, seed {seeds[0]}): ' +
              ', '.join(f'{k} {v:.0f}' for k, v in train_times.items()), '',
              'MR-FPPI curves: `mr_fppi.png`. Speed table: `speed/`.', '',
              'These are NOT Caltech numbers: one static campus scene, labels from the classical '
              'procedure of docs/vtest_labels.md.']
    report = '\n'.join(lines) + '\n'
    with open(osp.join(args.out, 'report.md'), 'w') as f:
        f.write(report)
    return report


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Teacher / mimic / scratch students on vtest.avi')
    parser.add_argument('--out', default='work_dirs/mimic_demo', help='output folder')
    parser.add_argument('--data-dir', default='data/vtest',
                        help='converted frames + annotations (the configs\' data_root)')
    parser.add_argument('--video', help='path of vtest.avi (default: found or downloaded)')
    parser.add_argument('--quick', action='store_true', help='the <= 30 min CPU preset')
    parser.add_argument('--iters', type=int, help='override the preset\'s student iterations')
    parser.add_argument('--teacher-iters', type=int,
                        help='override the preset\'s teacher iterations')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--shared-teacher', action='store_true',
                        help='train the teacher once (first seed) and reuse it for every seed')
    parser.add_argument('--models', nargs='+', choices=[m.name for m in MODELS],
                        default=[m.name for m in MODELS], help='train/evaluate only these')
    parser.add_argument('--gap', type=int, help='frames dropped between splits (builder default)')
    parser.add_argument('--workers', type=int, default=1, help='dataloader workers')
    parser.add_argument('--speed-runs', type=int, default=5)
    parser.add_argument('--speed-shape', default='480x640', help='HxW of the speed benchmark')
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--force', nargs='*', default=[], choices=[m.name for m in MODELS],
                        help='retrain (and re-test) these models')
    parser.add_argument('--force-data', action='store_true', help='rebuild the dataset')
    parser.add_argument('--force-eval', action='store_true', help='re-test every model')
    parser.add_argument('--force-speed', action='store_true', help='re-measure speed')
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    preset = PRESETS['quick' if args.quick else 'full']
    if args.iters is None:
        args.iters = preset['iters']
    if args.teacher_iters is None:
        args.teacher_iters = preset['teacher_iters']
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import mmmimic  # noqa: F401
    t_start = time.time()
    prepare_data(args)

    results: Dict[int, Dict[str, Dict[str, float]]] = {}
    train_times: Dict[str, float] = {}
    for seed in args.seeds:
        results[seed] = {}
        teacher_seed = args.seeds[0] if args.shared_teacher else seed
        teacher = next(m for m in MODELS if m.width is None)
        teacher_ckpt = train_model(teacher.name, teacher.config, args, teacher_seed, None)
        for m in MODELS:
            if m.name not in args.models:
                continue
            ckpt = teacher_ckpt if m is teacher else train_model(
                m.name, m.config, args, seed, teacher_ckpt if m.mimic else None)
            eval_seed = teacher_seed if m is teacher else seed
            results[seed][m.name] = evaluate_model(m.name, m.config, ckpt, args, eval_seed,
                                                   teacher_ckpt if m.mimic else None)
            tt = osp.join(args.out, f'seed{seed}', m.name, 'train_time.json')
            if seed == args.seeds[0] and osp.isfile(tt):
                with open(tt) as f:
                    train_times[m.name] = json.load(f)['seconds']

    speed = {} if args.skip_speed else measure_speed(args)
    if set(args.models) == {m.name for m in MODELS}:
        scored = score_and_plot(args, args.seeds)
        # the offline scoring tool, reading the result files, must agree with the metric
        for name, r in scored.items():
            online = results[args.seeds[0]][name]['caltech/Reasonable_MR-2']
            if abs(100 * r['Reasonable']['MR-2'] - online) > 1e-6:
                raise RuntimeError(f'{name}: result-file MR-2 {100 * r["Reasonable"]["MR-2"]} '
                                   f'!= CaltechMRMetric {online}')
        log('scoring the result files offline reproduces CaltechMRMetric for every model')
    rows = summarise(results, speed) if set(args.models) == {m.name for m in MODELS} else []
    summary = dict(args=vars(args), results=results, speed=speed, rows=rows,
                   wall_seconds=time.time() - t_start)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    if rows:
        report = write_report(args, rows, args.seeds, train_times)
        print(report)
    log(f'done in {(time.time() - t_start) / 60:.1f} min; report: {args.out}/report.md')
    return summary


if __name__ == '__main__':
    main()
