# Copyright (c) mmmimic. Where the time of the cross-scale student goes (issue 14, speed goal).
"""Per-stage latency of the Inception RPN teacher and its 1/2 students, PyTorch and onnxruntime.

Models (random weights; speed does not depend on them), each given the same full frame:

* ``teacher``: Inception RPN, full input (stride 16);
* ``s12_full``: 1/2-Inception RPN, full input (stride 16);
* ``s12_half``: 1/2-Inception RPN, half input (the frame resized by 0.5 in the graph; stride 16
  on the half image, i.e. a 4x smaller RPN map than the teacher's);
* ``xs12_half``: the cross-scale student: 1/2-Inception + x2 deconv neck, half input (stride 8
  on the half image, the teacher's map size).

Stages: ``resize`` (the in-graph half-size resize), ``backbone``, ``deconv`` (neck),
``rpn_conv`` (3x3 conv + ReLU), ``rpn_1x1`` (cls + reg convs), ``nms`` (onnxruntime's
``NonMaxSuppression``), ``post`` (anchors, decoding, top-k: everything else; PyTorch: NMS
included). onnxruntime: per-node kernel times from its profiler, summed by the node's module
scope (a Conv fused with its ReLU carries the ReLU's name). PyTorch: forward hooks around the
modules of one ``predict`` call, ``post`` = the rest of the call. Medians over ``--runs`` rounds,
every model and runtime once per round (round-robin).

Runtimes: ``pytorch`` (eager ``predict``); ``onnxruntime`` (the default export: NMS capped at
``max_per_img``, deconv + RPN conv fused into one conv, see
:class:`mmmimic.deployment.fused.FusedDeconvConv`; in its rows the ``rpn_conv`` column holds
the fused layer); ``ort_unfused`` (capped NMS, deconv and RPN conv kept apart) and
``ort_before`` (neither: the graph as exported before both), so that each change's speed-up is
a ratio within one run. The variants' detections are compared with the default's (count,
largest box and score difference; the uncapped NMS keeps exactly the same boxes).

Run from the repository root (``benchmarks`` is imported as a namespace package, ``mmmimic``
from the checkout or its install)::

    python -m benchmarks.onnx_cross_scale_profile --shapes 1000x1500 480x640 \\
        --out-dir benchmarks/results/onnx_speed

The stages are timed inside one call (profiler events, forward hooks), so this profiler keeps its
own clock rather than :mod:`mmmimic.utils.timing`, which times whole callables.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Dict, List

import numpy as np
import torch

from mmmimic.utils.tables import markdown_table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # default configs are relative to it

MODELS = {
    'teacher': ('configs/inception/rpn_inception_1xb2-40k_caltech.py', 1.0),
    's12_full': ('configs/inception/rpn_inception-1-2_1xb2-40k_caltech.py', 1.0),
    's12_half': ('configs/inception/rpn_inception-1-2_1xb2-40k_caltech-480x640.py', 0.5),
    'xs12_half': ('configs/cross_scale/'
                  'rpn_inception-1-2-deconv_mimic-inception_1xb2-40k_caltech-480x640.py', None),
}
VARIANTS = {
    'onnxruntime': dict(cap_nms=True, fuse_deconv=True),
    'ort_unfused': dict(cap_nms=True, fuse_deconv=False),
    'ort_before': dict(cap_nms=False, fuse_deconv=False),
}
STAGES = ('resize', 'backbone', 'deconv', 'rpn_conv', 'rpn_1x1', 'nms', 'post')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Per-stage latency of the teacher and the '
                                     '1/2 students (cross-scale speed analysis)')
    parser.add_argument('--shapes', nargs='+', default=['1000x1500', '480x640'])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--no-pytorch', action='store_true',
                        help='time the onnxruntime variants only')
    parser.add_argument('--out-dir', default='work_dirs/onnx_cross_scale_profile')
    return parser.parse_args(argv)


def stage_of_node(name: str, op: str) -> str:
    """The stage of an onnxruntime node (its name carries the module scope)."""
    if '/backbone/' in name:
        return 'backbone'
    if '/neck/' in name:
        return 'deconv'
    # the RPN conv fused with its ReLU is named after the ReLU: /bbox_head/Relu_output_0_nchwc
    if '/rpn_conv/' in name or '_head/Relu' in name or '/fused_neck/' in name:
        return 'rpn_conv'
    if '/rpn_cls/' in name or '/rpn_reg/' in name:
        return 'rpn_1x1'
    if op == 'Resize':
        return 'resize'
    if op == 'NonMaxSuppression':
        return 'nms'
    return 'post'


class OrtProfiled:
    """An onnxruntime session with its profiler on: per-call wall times, per-stage kernel times."""

    def __init__(self, onnx_file: str, feeds: dict, threads: int) -> None:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = onnx_file[:-len('.onnx')] + '_profile'
        self.session = ort.InferenceSession(onnx_file, sess_options=options,
                                            providers=['CPUExecutionProvider'])
        self.feeds = feeds
        self.walls: List[float] = []

    def run(self) -> list:
        start = time.perf_counter()
        outputs = self.session.run(None, self.feeds)
        self.walls.append((time.perf_counter() - start) * 1000)
        return outputs

    def stage_times(self, skip: int) -> Dict[str, float]:
        """Median per-stage kernel time (ms) and wall time of the calls after the first
        ``skip``."""
        trace = self.session.end_profiling()
        with open(trace) as f:
            events = json.load(f)
        os.remove(trace)
        runs = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                      if e.get('cat') == 'Session' and e.get('name') == 'model_run')
        per_run: List[Dict[str, float]] = [defaultdict(float) for _ in runs]
        for e in events:
            if e.get('cat') != 'Node' or not e.get('name', '').endswith('_kernel_time'):
                continue
            for (t0, t1), acc in zip(runs, per_run):
                if t0 <= e['ts'] <= t1:
                    node = e['name'][:-len('_kernel_time')]
                    acc[stage_of_node(node, e.get('args', {}).get('op_name', ''))] += \
                        e['dur'] / 1000
                    break
        per_run, walls = per_run[skip:], self.walls[skip:]
        out = {s: statistics.median(r[s] for r in per_run) for s in STAGES}
        out['total'] = statistics.median(walls)
        return out


def torch_stage_times(detector, inputs, samples, scale: float, warmup: int,
                      runs: int) -> Dict[str, float]:
    """Median per-stage time (ms) of eager ``predict`` (forward hooks around the modules)."""
    from mmmimic.models.distillers.cross_scale import resize_batch
    head = detector.rpn_head if hasattr(detector, 'rpn_head') else detector.bbox_head
    modules = {'backbone': [detector.backbone], 'rpn_conv': [head.rpn_conv],
               'rpn_1x1': [head.rpn_cls, head.rpn_reg]}
    if getattr(detector, 'neck', None) is not None:
        modules['deconv'] = [detector.neck]
    acc: Dict[str, float] = defaultdict(float)
    starts = {}
    handles = []
    for stage, mods in modules.items():
        for m in mods:
            handles.append(m.register_forward_pre_hook(
                lambda mod, _, s=stage: starts.__setitem__(id(mod), time.perf_counter())))
            handles.append(m.register_forward_hook(
                lambda mod, _a, _o, s=stage: acc.__setitem__(
                    s, acc[s] + (time.perf_counter() - starts[id(mod)]) * 1000)))
    results = []
    try:
        for i in range(warmup + runs):
            acc.clear()
            with torch.no_grad():
                start = time.perf_counter()
                x, s = inputs, samples
                if scale != 1.0:
                    x, s = resize_batch(inputs, samples, scale)
                acc['resize'] = (time.perf_counter() - start) * 1000
                detector.predict(x, s)
                total = (time.perf_counter() - start) * 1000
            if i >= warmup:
                row = {st: acc.get(st, 0.0) for st in STAGES if st != 'post'}
                row['post'] = total - sum(row.values())
                row['total'] = total
                results.append(row)
    finally:
        for h in handles:
            h.remove()
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample
    from mmmimic.deployment import export_onnx, load_detector
    from mmmimic.utils import parse_shape
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    agreement = {}
    with tempfile.TemporaryDirectory(prefix='xs_profile_') as tmp:
        for label in args.shapes:
            h, w = parse_shape(label)
            jobs = []
            for name, (config, scale) in MODELS.items():
                config = osp.join(ROOT, config)
                torch.manual_seed(0)
                detector, dp_cfg, own_scale = load_detector(config, None, scale)
                dp = MMDET_MODELS.build(dp_cfg)
                img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(0))
                sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                                     scale_factor=(1.0, 1.0)))
                data = dp(dict(inputs=[img], data_samples=[sample]), False)
                inputs, samples = data['inputs'], data['data_samples']
                ckpt = osp.join(tmp, f'{name}.pth')
                torch.save({'state_dict': detector.state_dict()}, ckpt)
                feeds = dict(image=inputs.numpy(),
                             img_shape=np.asarray([h, w], dtype=np.float32),
                             scale_factor=np.ones(2, dtype=np.float32))
                sessions = {}
                for runtime, options in VARIANTS.items():
                    onnx_file = osp.join(tmp, f'{name}_{label}_{runtime}.onnx')
                    export_onnx(config, ckpt, onnx_file, shape=tuple(inputs.shape[-2:]),
                                input_scale=scale, **options)
                    sessions[runtime] = OrtProfiled(onnx_file, feeds, args.threads)
                outputs = {k: session.run() for k, session in sessions.items()}
                for runtime, (boxes, scores, _) in outputs.items():
                    ref_boxes, ref_scores, _ = outputs['onnxruntime']
                    same = boxes.shape == ref_boxes.shape
                    agreement[(label, name, runtime)] = dict(
                        same_count=same, count=len(boxes),
                        max_box_diff=float(np.abs(boxes - ref_boxes).max()) if same else None,
                        max_score_diff=float(np.abs(scores - ref_scores).max()) if same else
                        None)
                jobs.append((name, detector, inputs, samples, own_scale, sessions))
            # round-robin: every model on every runtime once per round
            times = defaultdict(list)
            for i in range(args.warmup + args.runs):
                for name, detector, inputs, samples, scale, sessions in jobs:
                    for session in sessions.values():
                        session.run()
                    if args.no_pytorch:
                        continue
                    row = torch_stage_times(detector, inputs, samples, scale, 0, 1)
                    if i >= args.warmup:
                        times[(name, 'pytorch')].append(row)
            for name, detector, inputs, samples, scale, sessions in jobs:
                for runtime, session in sessions.items():
                    # skip the equality-check call and the warm-up rounds
                    times[(name, runtime)] = [session.stage_times(1 + args.warmup)]
            for (name, runtime), runs in sorted(times.items(), key=lambda kv: kv[0][1]):
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append(dict(shape=label, model=name, runtime=runtime,
                                 padded=list(jobs[0][2].shape[-2:]), **med,
                                 agreement_with_default=agreement.get((label, name, runtime))))
                print(label, name, runtime, {k: round(v, 1) for k, v in med.items()},
                      flush=True)
    teacher = {(r['shape'], r['runtime']): r['total'] for r in rows if r['model'] == 'teacher'}
    for r in rows:
        r['speedup_over_teacher'] = teacher[(r['shape'], r['runtime'])] / r['total']
        if r['runtime'].startswith(('onnxruntime', 'ort_')):
            before = next(u for u in rows if u['runtime'] == 'ort_before' and
                          (u['shape'], u['model']) == (r['shape'], r['model']))
            r['speedup_over_ort_before'] = before['total'] / r['total']
    head = ['frame', 'runtime', 'model', *STAGES, 'total (wall)', 'speed-up over teacher',
            'speed-up over ort_before']
    cells = [[r['shape'], r['runtime'], r['model'],
              *('-' if s == 'nms' and r['runtime'] == 'pytorch' else f'{r[s]:.0f}'
                for s in STAGES),
              f"{r['total']:.0f}", f"{r['speedup_over_teacher']:.2f}x",
              f"{r['speedup_over_ort_before']:.2f}x" if 'speedup_over_ort_before' in r else '']
             for r in rows]
    conditions = dict(threads=args.threads, runs=args.runs, warmup=args.warmup,
                      torch=torch.__version__, load_average_at_end=os.getloadavg(),
                      unit='ms; onnxruntime stages are summed kernel times (profiler), total '
                      'is the wall time of session.run')
    table = markdown_table(cells, head)
    with open(osp.join(args.out_dir, 'cross_scale_profile.md'), 'w') as f:
        f.write(json.dumps(conditions) + '\n\n' + table + '\n')
    with open(osp.join(args.out_dir, 'cross_scale_profile.json'), 'w') as f:
        json.dump(dict(conditions=conditions, rows=rows), f, indent=1)
    print(table)


if __name__ == '__main__':
    main()
