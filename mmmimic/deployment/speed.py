# Copyright (c) mmmimic contributors. All rights reserved.
"""Latency of teachers and students in eager PyTorch and in onnxruntime, timed in one run
(behind ``tools/deployment/benchmark_onnx_speed.py``).

For every ``(input size, thread count)`` the models are timed round-robin
(:func:`mmmimic.utils.time_round_robin`: one block of every model on every runtime per round), so
load on a shared machine hits all of them alike and the speed-up ratios stay meaningful when
absolute times are noisy. Times are end-to-end ``predict`` calls on the preprocessed, padded
frame: dense part, proposals, NMS, RoI stage (PyTorch: ``model.predict``; onnxruntime:
:class:`mmmimic.deployment.OnnxDetector.predict`, one graph ending in NMS).
"""
import csv
import json
import os
import os.path as osp
import platform
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from mmmimic.utils import markdown_table, parse_shape, time_round_robin

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

#: The columns of speed.csv.
SPEED_COLUMNS = ['shape', 'threads', 'group', 'model', 'runtime', 'ms', 'speedup_over_teacher',
                 'speedup_over_pytorch', 'min_ms', 'max_ms']


class Entry:
    """One model on one runtime: a callable timed on its batch."""

    def __init__(self, group: str, name: str, runtime: str, fn: Callable[[], None],
                 is_teacher: bool) -> None:
        self.group, self.name, self.runtime, self.fn = group, name, runtime, fn
        self.is_teacher = is_teacher


def build_entries(groups: Sequence[Sequence[str]], shape: Tuple[int, int], threads: int,
                  runtimes: Sequence[str], model_dir: str) -> List[Entry]:
    """Build every model (PyTorch) and export/load it (onnxruntime) for ``shape``."""
    from mmdet.registry import MODELS
    from mmmimic.deployment import (DeployableDetector, OnnxDetector, check_onnx_identity,
                                    config_model_hash, export_onnx, load_detector,
                                    read_onnx_meta)
    from mmmimic.apis.speed import make_batch
    from mmmimic.models.distillers.cross_scale import resize_batch
    entries = []
    for group in groups:
        name, configs = group[0], group[1:]
        for i, config in enumerate(configs):
            model_name = osp.splitext(osp.basename(config))[0]
            torch.manual_seed(0)
            detector, dp_cfg, scale = load_detector(config, None)
            DeployableDetector(detector, scale)  # refuse models without a route up front
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


def benchmark_onnx_speed(groups: Optional[Sequence[Sequence[str]]] = None,
                         shapes: Sequence[str] = ('1000x1500', '480x640'),
                         threads: Sequence[int] = (1, 2),
                         runtimes: Sequence[str] = ('pytorch', 'onnxruntime'), *,
                         warmup: int = 2, runs: int = 5, out_dir: str = 'work_dirs/onnx_speed',
                         model_dir: Optional[str] = None) -> List[Dict[str, object]]:
    """Time every group on every runtime, size and thread count; one row per timing.

    Args:
        groups: ``[NAME, TEACHER_CONFIG, STUDENT_CONFIG...]`` lists (default:
            :data:`DEFAULT_GROUPS`); speed-ups are over the group's first config.
        shapes: frame sizes ``'HxW'``.
        threads: thread counts (torch / onnxruntime intra-op).
        runtimes: ``'pytorch'`` and/or ``'onnxruntime'``.
        warmup: untimed rounds.
        runs: timed rounds (median).
        out_dir: created here (the results are written by :func:`write_onnx_speed`).
        model_dir: where the exported .onnx files are kept (default: a temporary folder,
            removed at the end); a file found there is reused only when it passes the checks
            of every .onnx reader and records the model hash of its config.
    """
    if model_dir is None:
        with tempfile.TemporaryDirectory(prefix='onnx_speed_') as tmp:
            return _benchmark(groups, shapes, threads, runtimes, warmup, runs, out_dir, tmp)
    os.makedirs(model_dir, exist_ok=True)
    return _benchmark(groups, shapes, threads, runtimes, warmup, runs, out_dir, model_dir)


def _benchmark(groups, shapes, thread_counts, runtimes, warmup, runs, out_dir,
               model_dir) -> List[Dict[str, object]]:
    groups = groups or DEFAULT_GROUPS
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for label in shapes:
        shape = parse_shape(label)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            entries = build_entries(groups, shape, threads, runtimes, model_dir)
            timings = time_round_robin([e.fn for e in entries], rounds=runs, warmup=warmup,
                                       num_threads=threads,
                                       labels=[f'{e.name} {e.runtime}' for e in entries])
            ms_of = {id(e): t.median_ms for e, t in zip(entries, timings)}
            teacher_ms = {(e.group, e.runtime): ms_of[id(e)] for e in entries if e.is_teacher}
            torch_ms = {(e.group, e.name): ms_of[id(e)]
                        for e in entries if e.runtime == 'pytorch'}
            for e, timing in zip(entries, timings):
                ms = timing.median_ms
                row = dict(shape=label, threads=threads, group=e.group, model=e.name,
                           runtime=e.runtime, ms=ms,
                           speedup_over_teacher=teacher_ms[(e.group, e.runtime)] / ms,
                           min_ms=timing.min_ms, max_ms=timing.max_ms)
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
    models = []
    for r in rows:
        if (r['group'], r['model']) not in models:
            models.append((r['group'], r['model']))
    index = {(r['group'], r['model'], r['runtime'], r['shape'], r['threads']): r for r in rows}
    lines = []
    for group, model in models:
        cells = []
        for rt, s, t in cols:
            r = index.get((group, model, rt, s, t))
            cells.append('-' if r is None else
                         f"{r['speedup_over_teacher']:.2f}x ({r['ms']:.0f} ms)")
        lines.append([group, model] + cells)
    return markdown_table(lines, head)


def write_plot(rows: List[Dict[str, object]], path: str) -> None:
    """Bars of the speed-ups over the teacher, one panel per (size, threads)."""
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


def onnx_speed_conditions(warmup: int, runs: int) -> dict:
    """The measurement conditions recorded with the rows."""
    import onnxruntime
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    return dict(
        torch=torch.__version__, onnxruntime=onnxruntime.__version__,
        cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
        load_average_at_end=load, warmup=warmup, runs=runs,
        note='median of the timed rounds (torch.utils.benchmark); models and runtimes timed '
        'round-robin; batch 1; random weights; padded frame through predict (post-processing '
        'included)')


def write_onnx_speed(rows: List[Dict[str, object]], conditions: dict, out_dir: str,
                     shapes: Sequence[str], threads: Sequence[int],
                     runtimes: Sequence[str]) -> str:
    """Write speed.csv, speed.json, speed.md and speed.png; return the Markdown table."""
    with open(osp.join(out_dir, 'speed.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=SPEED_COLUMNS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    with open(osp.join(out_dir, 'speed.json'), 'w') as f:
        json.dump(dict(conditions=conditions, rows=rows), f, indent=1)
    table = speedup_table(rows, shapes, threads, runtimes)
    with open(osp.join(out_dir, 'speed.md'), 'w') as f:
        f.write(json.dumps(conditions) + '\n\n' + table + '\n')
    write_plot(rows, osp.join(out_dir, 'speed.png'))
    return table
