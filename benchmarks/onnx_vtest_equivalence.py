# Copyright (c) mmmimic. The exported model scores the PyTorch model's MR-2 (issue 14).
"""MR-2 of a trained model and of its ONNX export on a test split, with ``tools/test.py``.

    python benchmarks/onnx_vtest_equivalence.py CONFIG CHECKPOINT --data-dir data/vtest \\
        [--out DIR] [--work-dir DIR] [--shape H W] [--input-scale S] [--tolerance 0.05] \\
        [--cfg-options KEY=VALUE ...]

1. exports ``CHECKPOINT`` with :func:`mmmimic.deployment.export_onnx` (``--shape``: static;
   default: dynamic height/width);
2. runs ``tools/test.py CONFIG CHECKPOINT`` and ``tools/test.py CONFIG model.onnx`` on the test
   split of ``--data-dir`` (the config's test dataloader and evaluator: on vtest the Caltech
   ``Reasonable`` and ``All`` MR-2/MR-4), each dumping its detections;
3. prints and writes (``--out``: ``equivalence.json``, ``equivalence.md``) both scores, their
   differences and the per-frame agreement of the detections (counts, largest box and score
   differences), and exits 1 when ``|MR-2(onnx) - MR-2(pytorch)|`` of any setting exceeds
   ``--tolerance`` points (0.05 in issue 14).

The model, dumps and logs go to ``--work-dir`` (default ``work_dirs/onnx_vtest_equivalence/
<config name>``); ``--out`` gets only the small result files.
"""
import argparse
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import numpy as np

from mmmimic.utils.tables import markdown_table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='MR-2 of a model and of its ONNX export '
                                     '(tools/test.py on both)')
    parser.add_argument('config', help='the test config (plain, extracted student or distiller)')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument('--data-dir', required=True,
                        help='converted release whose test split the config reads (data_root)')
    parser.add_argument('--out', default=None, help='folder of equivalence.json/.md '
                        '(default: the work dir)')
    parser.add_argument('--work-dir', default=None, help='folder of the .onnx, dumps and logs')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='static export at this padded size (default: dynamic)')
    parser.add_argument('--input-scale', type=float, default=None,
                        help='input scale for a config that records none (see export_onnx.py)')
    parser.add_argument('--tolerance', type=float, default=0.05,
                        help='largest allowed |dMR-2| in points')
    parser.add_argument('--workers', type=int, default=0, help='test dataloader workers')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='more tools/test.py --cfg-options for both runs (e.g. '
                        'test_dataloader.dataset.indices=10 for a quick look)')
    return parser.parse_args(argv)


def test_options(config: str, data_dir: str, workers: int) -> List[str]:
    """``--cfg-options`` of both tools/test.py runs: the data root, the workers, no MR plot."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    opts = [f'test_dataloader.dataset.data_root={osp.abspath(data_dir)}/',
            f'test_dataloader.num_workers={workers}',
            f'test_dataloader.persistent_workers={workers > 0}']
    evaluator = cfg.test_evaluator
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    found = [i for i, m in enumerate(metrics) if m.get('type') == 'CaltechMRMetric']
    if not found:
        raise ValueError(f'{config}: test_evaluator has no CaltechMRMetric, so there is no '
                         'MR-2 to compare')
    key = 'test_evaluator' if not isinstance(evaluator, (list, tuple)) else \
        f'test_evaluator.{found[0]}'
    opts.append(f'{key}.plot=False')
    return opts


def run_test_tool(config: str, checkpoint: str, work_dir: str, dump: str,
                  options: List[str]) -> Tuple[Dict[str, float], float]:
    """``tools/test.py`` in a subprocess; returns its metrics (the run's JSON log) and seconds.

    Raises:
        RuntimeError: the tool failed (its output tail is in the message).
    """
    env = dict(os.environ)
    args = [sys.executable, osp.join(ROOT, 'tools', 'test.py'), config, checkpoint,
            '--work-dir', work_dir, '--out', dump, '--overwrite', '--cfg-options'] + options
    before = set(glob.glob(osp.join(work_dir, '*', '*.json')))
    start = time.time()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.time() - start
    with open(osp.join(work_dir, 'test_tool.log'), 'w') as f:
        f.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f'tools/test.py {checkpoint} failed (exit {proc.returncode}):\n' +
                           (proc.stdout + proc.stderr)[-3000:])
    logs = sorted(set(glob.glob(osp.join(work_dir, '*', '*.json'))) - before,
                  key=osp.getmtime)
    if not logs:
        raise RuntimeError(f'tools/test.py {checkpoint} wrote no metrics JSON under {work_dir}')
    with open(logs[-1]) as f:
        metrics = json.load(f)
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}, seconds


def nearest_box_diffs(boxes_a: np.ndarray, scores_a: np.ndarray, boxes_b: np.ndarray,
                      scores_b: np.ndarray) -> Tuple[float, float]:
    """Largest distance (px, L-inf over the 4 coordinates) from a box of either set to the
    nearest box of the other, and the largest score difference of those nearest pairs.

    Detections with (nearly) tied scores may come in another order from the two runtimes, so
    boxes are paired by position, not by rank.
    """
    dist = np.abs(boxes_a[:, None, :] - boxes_b[None, :, :]).max(axis=2)
    a_to_b, b_to_a = dist.argmin(axis=1), dist.argmin(axis=0)
    box = max(float(dist.min(axis=1).max()), float(dist.min(axis=0).max()))
    score = max(float(np.abs(scores_a - scores_b[a_to_b]).max()),
                float(np.abs(scores_b - scores_a[b_to_a]).max()))
    return box, score


def compare_dumps(torch_dump: str, onnx_dump: str) -> Dict[str, object]:
    """Per-frame agreement of two ``--out`` dumps (same frames, same order)."""
    with open(torch_dump, 'rb') as f:
        a = pickle.load(f)
    with open(onnx_dump, 'rb') as f:
        b = pickle.load(f)
    if len(a) != len(b):
        raise ValueError(f'{torch_dump} has {len(a)} frames, {onnx_dump} {len(b)}')
    count_diff, box_diffs, score_diffs = 0, [], []
    for x, y in zip(a, b):
        if x['img_id'] != y['img_id']:
            raise ValueError(f'frame order differs: {x["img_id"]} vs {y["img_id"]}')
        px, py = x['pred_instances'], y['pred_instances']
        bx, by = np.asarray(px['bboxes']), np.asarray(py['bboxes'])
        if len(bx) != len(by):
            count_diff += 1
        if len(bx) and len(by):
            box, score = nearest_box_diffs(bx, np.asarray(px['scores']), by,
                                           np.asarray(py['scores']))
            box_diffs.append(box)
            score_diffs.append(score)
    return dict(frames=len(a), frames_with_other_count=count_diff,
                detections=int(sum(len(x['pred_instances']['bboxes']) for x in a)),
                max_nearest_box_diff_px=max(box_diffs, default=0.0),
                max_nearest_score_diff=max(score_diffs, default=0.0))


def report(result: dict) -> str:
    """Markdown of one equivalence run."""
    lines = [f"# ONNX vs PyTorch on {result['data_dir']} (test split)", '',
             f"config `{result['config']}`, checkpoint `{result['checkpoint']}`, export: "
             f"{result['export']}, input scale {result['input_scale']}", '',
             markdown_table([[key, f'{t:.4f}', f'{o:.4f}', f'{o - t:+.4f}']
                             for key, (t, o) in result['metrics'].items()],
                            ['metric', 'PyTorch', 'onnxruntime', 'difference (points)'])]
    agree = result['detections']
    lines += ['', f"{agree['frames']} frames, {agree['detections']} PyTorch detections; frames "
              f"with another detection count: {agree['frames_with_other_count']}; every box "
              f"of either runtime is within {agree['max_nearest_box_diff_px']:.1e} px of a box "
              "of the other (nearest by position: tied scores may swap ranks), their scores "
              f"within {agree['max_nearest_score_diff']:.1e}.", '',
              f"|dMR-2| <= {result['tolerance']} points: "
              f"**{'yes' if result['passed'] else 'NO'}** (largest {result['max_abs_dmr2']:.4f})."
              ' (tools/test.py wall times are in the JSON; they include start-up and '
              'whatever else loads the machine, so they are no speed measurement.)']
    return '\n'.join(lines) + '\n'


def _shown(path: str) -> str:
    """A path relative to the repository when inside it, else absolute."""
    path = osp.abspath(path)
    return osp.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmmimic.deployment import export_onnx
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if not osp.isdir(osp.join(args.data_dir, 'annotations')):
        raise FileNotFoundError(f'--data-dir {args.data_dir} has no annotations/ folder: not a '
                                'converted release')
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join(ROOT, 'work_dirs', 'onnx_vtest_equivalence', name)
    out_dir = args.out or work_dir
    os.makedirs(work_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    onnx_file = osp.join(work_dir, f'{name}.onnx')
    meta = export_onnx(args.config, args.checkpoint, onnx_file, shape=args.shape,
                       dynamic=args.shape is None, input_scale=args.input_scale,
                       overwrite=True)  # its own intermediate in work_dir, redone each run
    options = test_options(args.config, args.data_dir, args.workers) + args.cfg_options
    scores, seconds = {}, {}
    for runtime, model in (('pytorch', args.checkpoint), ('onnxruntime', onnx_file)):
        run_dir = osp.join(work_dir, runtime)
        os.makedirs(run_dir, exist_ok=True)
        scores[runtime], seconds[runtime] = run_test_tool(
            args.config, model, run_dir, osp.join(work_dir, f'{runtime}.pkl'), options)
    mr_keys = sorted(k for k in scores['pytorch']
                     if k.startswith('caltech/') and ('_MR-2' in k or '_MR-4' in k))
    if not mr_keys:
        raise RuntimeError(f'no caltech/..._MR-2 metrics in the PyTorch run: '
                           f'{sorted(scores["pytorch"])}')
    metrics = {k: (scores['pytorch'][k], scores['onnxruntime'][k]) for k in mr_keys}
    dmr2 = [abs(o - t) for k, (t, o) in metrics.items() if k.endswith('_MR-2')]
    result = dict(
        config=_shown(args.config),
        checkpoint=_shown(args.checkpoint), data_dir=_shown(args.data_dir),
        export='dynamic HxW' if meta['input_shape'] is None else
        'static {}x{}'.format(*meta['input_shape']),
        input_scale=meta['input_scale'], metrics=metrics,
        other_metrics={rt: {k: v for k, v in s.items() if k not in mr_keys}
                       for rt, s in scores.items()},
        detections=compare_dumps(osp.join(work_dir, 'pytorch.pkl'),
                                 osp.join(work_dir, 'onnxruntime.pkl')),
        tolerance=args.tolerance, max_abs_dmr2=max(dmr2),
        passed=max(dmr2) <= args.tolerance, seconds=seconds)
    with open(osp.join(out_dir, 'equivalence.json'), 'w') as f:
        json.dump(result, f, indent=1)
    text = report(result)
    with open(osp.join(out_dir, 'equivalence.md'), 'w') as f:
        f.write(text)
    print(text)
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
