# Copyright (c) mmmimic. Speed-ups of students over the teacher, PyTorch vs onnxruntime.
"""Latency of teachers and students in eager PyTorch and in onnxruntime, timed in one run.

Sibling of ``tools/analysis_tools/benchmark_speed.py`` for the deployed runtime. For every
``(input size, thread count)`` the models are timed round-robin (one run of every model on every
runtime per round), so load on a shared machine hits all of them alike and the speed-up ratios
stay meaningful when absolute times are noisy. Times are end-to-end ``predict`` calls on the
preprocessed, padded frame: dense part, proposals, NMS, RoI stage (PyTorch: ``model.predict``;
onnxruntime: :class:`mmmimic.deployment.OnnxDetector.predict`, one graph ending in NMS). The work
is done by :mod:`mmmimic.deployment.speed`.

Groups: ``--group NAME TEACHER STUDENT...`` (repeatable); speed-ups are over the group's first
config (its teacher) on the same runtime, thread count and input size. A distiller config stands
for its student (cross-scale students resize the full frame inside the graph). Default: the
Caltech Inception RPN family (teacher, 1/2, 1/4, 1/8, cross-scale 1/2 at half input) and the
Inception R-FCN family (teacher, 1/2, 1/4, 1/8). Weights are random (speed does not depend on
them; NMS inputs are capped by ``nms_pre`` / ``max_per_img``).

Example::

    python tools/deployment/benchmark_onnx_speed.py --out-dir benchmarks/results/onnx_speed
"""
import argparse
import json

from mmmimic.deployment.speed import (benchmark_onnx_speed, onnx_speed_conditions,
                                      write_onnx_speed)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Teacher/student speed-ups, PyTorch vs '
                                     'onnxruntime, timed interleaved')
    parser.add_argument('--group', nargs='+', action='append', metavar='NAME_THEN_CONFIGS',
                        help='NAME TEACHER_CONFIG STUDENT_CONFIG... (repeatable)')
    parser.add_argument('--shapes', nargs='+', default=['1000x1500', '480x640'],
                        help='frame sizes HxW (padded as the model\'s preprocessor does)')
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2],
                        help='thread counts (torch.set_num_threads / onnxruntime intra-op)')
    parser.add_argument('--runtimes', nargs='+', default=['pytorch', 'onnxruntime'],
                        choices=['pytorch', 'onnxruntime'])
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds')
    parser.add_argument('--runs', type=int, default=5, help='timed rounds (median)')
    parser.add_argument('--out-dir', default='work_dirs/onnx_speed',
                        help='where speed.csv, speed.md, speed.json and speed.png are written')
    parser.add_argument('--model-dir', default=None,
                        help='where the exported .onnx files are kept (default: a temporary '
                        'folder, removed at the end); a file found there is reused only when '
                        'it passes the checks of every .onnx reader and records the model hash '
                        'of its config')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import onnxruntime  # noqa: F401  (refuse early without the deploy extra)
    rows = benchmark_onnx_speed(args.group, args.shapes, args.threads, args.runtimes,
                                warmup=args.warmup, runs=args.runs, out_dir=args.out_dir,
                                model_dir=args.model_dir)
    conditions = onnx_speed_conditions(args.warmup, args.runs)
    table = write_onnx_speed(rows, conditions, args.out_dir, args.shapes, args.threads,
                             args.runtimes)
    print(json.dumps(conditions))
    print(table)


if __name__ == '__main__':
    main()
