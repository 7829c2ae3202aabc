# Copyright (c) mmmimic. Speed-ups of students over the teacher, PyTorch vs onnxruntime.
"""Latency of teachers and students in eager PyTorch and in onnxruntime, timed in one run.

Sibling of ``tools/analysis_tools/benchmark_speed.py`` for the deployed runtime. For every
``(input size, thread count)`` the models are timed round-robin (one run of every model on every
runtime per round), so load on a shared machine hits all of them alike and the speed-up ratios
stay meaningful when absolute times are noisy. Times are end-to-end ``predict`` calls on the
preprocessed, padded frame: dense part, proposals, NMS, RoI stage (PyTorch: ``model.predict``;
onnxruntime: :class:`mmmimic.deployment.OnnxDetector.predict`, one graph ending in NMS).

Groups: ``--group NAME TEACHER STUDENT...`` (repeatable); speed-ups are over the group's first
config (its teacher) on the same runtime, thread count and input size. A distiller config stands
for its student (cross-scale students resize the full frame inside the graph). Default: the
Caltech Inception RPN family (teacher, 1/2, 1/4, 1/8, cross-scale 1/2 at half input) and the
Inception R-FCN family (teacher, 1/2, 1/4, 1/8). Weights are random (speed does not depend on
them; NMS inputs are capped by ``nms_pre`` / ``max_per_img``).

Example::

    python tools/deployment/benchmark_onnx_speed.py --out-dir benchmarks/onnx_speed
"""
import argparse
import csv
import json
import os
import os.path as osp
import platform
import statistics
import time
from typing import Dict, List, Sequence, Tuple

import torch

from mmmimic.utils import parse_shape

DEFAULT_GROUPS = [
    ['rpn', 'configs/inception/rpn_inception_1xb2-40k_caltech.py',
     'configs/inception/rpn_inception-1-2_1xb2-40k_caltech.py',
     'configs/inception/rpn_inception-1-4_1xb2-40k_caltech.py',
     'configs/inception/rpn_inception-1-8_1xb2-40k_caltech.py',
     'configs/cross_scale/rpn_inception-1-2-deconv_mimic-inception_1xb2-40k_caltech-480x640.py'],
    ['rfcn', 'configs/rfcn/rfcn_inception_1xb2-40k_caltech.py',
     'configs/rfcn/rfcn_inception-1-2_1xb2-40k_caltech.py',
     'configs/rfcn/rfcn_inception-1-4_1xb2-40k_caltech.py',
     'configs/rfcn/rfcn_inception-1-8_1xb2-40k_caltech.py'],
]


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


def make_batch(data_preprocessor, shape: Tuple[int, int]) -> dict:
    """One random uint8 frame of ``shape`` through the model's preprocessor."""
    from mmdet.structures import DetDataSample
    h, w = shape
    img = torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(0),
                        dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    return data_preprocessor(dict(inputs=[img], data_samples=[sample]), False)


class Entry:
    """One model on one runtime: a callable timed on its batch."""

    def __init__(self, group: str, name: str, runtime: str, fn, is_teacher: bool) -> None:
        self.group, self.name, self.runtime, self.fn = group, name, runtime, fn
        self.is_teacher = is_teacher
        self.times: List[float] = []

    def run(self) -> float:
        start = time.perf_counter()
        self.fn()
        return (time.perf_counter() - start) * 1000


def build_entries(groups: Sequence[Sequence[str]], shape: Tuple[int, int], threads: int,
                  runtimes: Sequence[str], model_dir: str) -> List[Entry]:
    """Build every model (PyTorch) and export/load it (onnxruntime) for ``shape``."""
    from mmmimic.deployment import (DeployableDetector, OnnxDetector, check_onnx_identity,
                                    config_model_hash, export_onnx, load_detector,
                                    read_onnx_meta)
    from mmmimic.models.distillers.cross_scale import resize_batch
    entries = []
    for group in groups:
        name, configs = group[0], group[1:]
        for i, config in enumerate(configs):
            model_name = osp.splitext(osp.basename(config))[0]
            torch.manual_seed(0)
            detector, dp_cfg, scale = load_detector(config, None)
            DeployableDetector(detector, scale)  # refuse models without a route up front
            from mmdet.registry import MODELS
            data = make_batch(MODELS.build(dp_cfg), shape)
            inputs, samples = data['inputs'], data['data_samples']
            if 'pytorch' in runtimes:
                def torch_fn(d=detector, x=inputs, s=samples, sc=scale):
                    with torch.no_grad():
                        if sc != 1.0:
                            x, s = resize_batch(x, s, sc)
                        d.predict(x, s)
                entries.append(Entry(name, model_name, 'pytorch', torch_fn, i == 0))
            if 'onnxruntime' in runtimes:
                ckpt = osp.join(model_dir, f'{model_name}.pth')
                torch.save({'state_dict': detector.state_dict()}, ckpt)
                pad_h, pad_w = inputs.shape[-2:]
                onnx_file = osp.join(model_dir, f'{model_name}_{pad_h}x{pad_w}.onnx')
                if not osp.lexists(onnx_file):
                    export_onnx(config, ckpt, onnx_file, shape=(pad_h, pad_w))
                else:  # an earlier run's file (untrusted data): the network of this config?
                    check_onnx_identity(read_onnx_meta(onnx_file), config_model_hash(config),
                                        onnx_file, config)
                # metadata against the closed schema, bounded loops: see mmmimic.deployment
                onnx_model = OnnxDetector(onnx_file, device='cpu', num_threads=threads)

                def ort_fn(m=onnx_model, x=inputs, s=samples):
                    m.predict(x, s)
                entries.append(Entry(name, model_name, 'onnxruntime', ort_fn, i == 0))
    return entries


def time_interleaved(entries: Sequence[Entry], warmup: int, runs: int) -> None:
    for _ in range(warmup):
        for entry in entries:
            entry.run()
    for _ in range(runs):
        for entry in entries:
            entry.times.append(entry.run())


def benchmark(args: argparse.Namespace) -> List[Dict[str, object]]:
    import tempfile
    if args.model_dir is None:
        with tempfile.TemporaryDirectory(prefix='onnx_speed_') as model_dir:
            return _benchmark(args, model_dir)
    os.makedirs(args.model_dir, exist_ok=True)
    return _benchmark(args, args.model_dir)


def _benchmark(args: argparse.Namespace, model_dir: str) -> List[Dict[str, object]]:
    groups = args.group or DEFAULT_GROUPS
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for label in args.shapes:
        shape = parse_shape(label)
        for threads in args.threads:
            torch.set_num_threads(threads)
            entries = build_entries(groups, shape, threads, args.runtimes, model_dir)
            time_interleaved(entries, args.warmup, args.runs)
            teacher_ms = {(e.group, e.runtime): statistics.median(e.times)
                          for e in entries if e.is_teacher}
            torch_ms = {(e.group, e.name): statistics.median(e.times)
                        for e in entries if e.runtime == 'pytorch'}
            for e in entries:
                ms = statistics.median(e.times)
                row = dict(shape=label, threads=threads, group=e.group, model=e.name,
                           runtime=e.runtime, ms=ms,
                           speedup_over_teacher=teacher_ms[(e.group, e.runtime)] / ms,
                           min_ms=min(e.times), max_ms=max(e.times))
                if (e.group, e.name) in torch_ms:
                    row['speedup_over_pytorch'] = torch_ms[(e.group, e.name)] / ms
                rows.append(row)
                print(f"{label} {threads}t {e.group:5s} {e.name:55s} {e.runtime:11s} "
                      f"{ms:8.1f} ms  x{row['speedup_over_teacher']:.2f} over teacher",
                      flush=True)
    return rows


def speedup_table(rows: List[Dict[str, object]], shapes: Sequence[str],
                  threads: Sequence[int], runtimes: Sequence[str]) -> str:
    """Markdown: one line per model, a speed-up-over-teacher column per (runtime, size,
    threads), and the latency of each cell in brackets."""
    cols = [(rt, s, t) for s in shapes for t in threads for rt in runtimes]
    head = ['group', 'model'] + [f'{rt} {s} {t}t' for rt, s, t in cols]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    models = []
    for r in rows:
        if (r['group'], r['model']) not in models:
            models.append((r['group'], r['model']))
    index = {(r['group'], r['model'], r['runtime'], r['shape'], r['threads']): r for r in rows}
    for group, model in models:
        cells = []
        for rt, s, t in cols:
            r = index.get((group, model, rt, s, t))
            cells.append('-' if r is None else
                         f"{r['speedup_over_teacher']:.2f}x ({r['ms']:.0f} ms)")
        lines.append(f'| {group} | {model} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_plot(rows: List[Dict[str, object]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = sorted({(r['shape'], r['threads']) for r in rows},
                    key=lambda p: (p[0], p[1]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (shape, threads) in zip(axes[0], panels):
        sub = [r for r in rows if r['shape'] == shape and r['threads'] == threads]
        models = []
        for r in sub:
            if r['model'] not in models:
                models.append(r['model'])
        runtimes = sorted({r['runtime'] for r in sub}, reverse=True)
        width = 0.8 / len(runtimes)
        for k, rt in enumerate(runtimes):
            vals = [next((r['speedup_over_teacher'] for r in sub
                          if r['model'] == m and r['runtime'] == rt), 0) for m in models]
            ax.bar([j + k * width for j in range(len(models))], vals, width, label=rt)
        ax.set_xticks([j + width * (len(runtimes) - 1) / 2 for j in range(len(models))])
        ax.set_xticklabels([m.replace('_caltech', '').replace('-480x640', '')
                            for m in models], rotation=60, ha='right', fontsize=6)
        ax.set_title(f'{shape}, {threads} thread(s)', fontsize=9)
        ax.set_ylabel('speed-up over teacher (same runtime)', fontsize=8)
        ax.axhline(1, color='grey', lw=0.5)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    import onnxruntime
    rows = benchmark(args)
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    conditions = dict(
        torch=torch.__version__, onnxruntime=onnxruntime.__version__,
        cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
        load_average_at_end=load, warmup=args.warmup, runs=args.runs,
        note='median of the timed rounds; models and runtimes timed round-robin; batch 1; '
        'random weights; padded frame through predict (post-processing included)')
    cols = ['shape', 'threads', 'group', 'model', 'runtime', 'ms', 'speedup_over_teacher',
            'speedup_over_pytorch', 'min_ms', 'max_ms']
    with open(osp.join(args.out_dir, 'speed.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    with open(osp.join(args.out_dir, 'speed.json'), 'w') as f:
        json.dump(dict(conditions=conditions, rows=rows), f, indent=1)
    table = speedup_table(rows, args.shapes, args.threads, args.runtimes)
    with open(osp.join(args.out_dir, 'speed.md'), 'w') as f:
        f.write(json.dumps(conditions) + '\n\n' + table + '\n')
    write_plot(rows, osp.join(args.out_dir, 'speed.png'))
    print(json.dumps(conditions))
    print(table)


if __name__ == '__main__':
    main()
