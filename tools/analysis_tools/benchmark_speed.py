"""Parameters, FLOPs and inference latency of detectors: the paper's Table 3 (Li et al. 2017).

For each config: parameters of the whole detector, FLOPs of its dense part (backbone, neck, RPN
head and, for R-FCN, the position-sensitive score maps; counted by ``mmengine.analysis``) and the
median wall time of ``model.predict`` at batch 1 after warm-up (proposals, NMS and RoI pooling
included), at each input size, timing the models round-robin (robust ratios on a shared
machine). Ratios are relative to the first config.

Example::

    python tools/analysis_tools/benchmark_speed.py \\
        configs/rfcn/rfcn_inception_1xb2-40k_caltech.py \\
        configs/rfcn/rfcn_inception-1-2_1xb2-40k_caltech.py \\
        configs/rfcn/rfcn_inception-1-4_1xb2-40k_caltech.py \\
        configs/rfcn/rfcn_inception-1-8_1xb2-40k_caltech.py \\
        --out-dir work_dirs/benchmark_speed

Weights are random (no checkpoint is needed for speed); dataset parts of the configs are unused.
"""
import argparse
import csv
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmmimic.utils import parse_shape


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Params / FLOPs / latency table of detectors')
    parser.add_argument('configs', nargs='+', help='config files; ratios are to the first')
    parser.add_argument('--shapes', nargs='+', default=['1000x1500', '480x640'],
                        help='input sizes HxW (default: 1000x1500 480x640)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs per shape')
    parser.add_argument('--runs', type=int, default=5, help='timed runs per shape (median)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BN into the preceding convs before timing (deploy setting)')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_speed',
                        help='where speed.csv, speed.md and speed.png are written')
    return parser.parse_args()


class DenseForward(nn.Module):
    """The per-image dense computation of a detector, for FLOP counting.

    Args:
        detector: an mmdet detector with ``extract_feat`` and optionally an RPN and an R-FCN
            RoI head (``bbox_head.forward_score_maps``).
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Backbone/neck features, RPN maps and R-FCN score maps of ``inputs``."""
        det = self.detector
        feats = det.extract_feat(inputs)
        outs = list(feats)
        if getattr(det, 'rpn_head', None) is not None:
            for level_outs in det.rpn_head(feats):
                outs += list(level_outs)
        elif hasattr(det, 'bbox_head'):  # RPN-only or one-stage detectors
            for level_outs in det.bbox_head(feats):
                outs += list(level_outs)
        roi_head = getattr(det, 'roi_head', None)
        bbox_head = getattr(roi_head, 'bbox_head', None)
        if hasattr(bbox_head, 'forward_score_maps'):
            outs += list(bbox_head.forward_score_maps(feats))
        return tuple(outs)


def build_detector(config: str, device: str) -> Tuple[nn.Module, str]:
    """Build the model of ``config`` in eval mode (random weights, no checkpoint download)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    model = MODELS.build(cfg.model).to(device).eval()
    return model, osp.splitext(osp.basename(config))[0]


def make_batch(model: nn.Module, shape: Tuple[int, int], device: str) -> dict:
    """One preprocessed random image of ``shape`` with its data sample."""
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), pad_shape=(h, w)))
    data = model.data_preprocessor(dict(inputs=[img.to(device)], data_samples=[sample]), False)
    return data


def time_predict_ms(model: nn.Module, data: dict) -> float:
    """Wall time (ms) of one ``model.predict`` call."""
    with torch.no_grad():
        if data['inputs'].is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.predict(data['inputs'], data['data_samples'])
        if data['inputs'].is_cuda:
            torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def interleaved_median_ms(models: Sequence[nn.Module], batches: Sequence[dict], warmup: int,
                          runs: int) -> List[float]:
    """Median latency of each model, timing the models round-robin.

    One timed run of every model per round, so a load spike on a shared machine hits all of them
    alike and the ratios stay meaningful even when the absolute times are noisy.
    """
    for _ in range(warmup):
        for model, data in zip(models, batches):
            time_predict_ms(model, data)
    times: List[List[float]] = [[] for _ in models]
    for _ in range(runs):
        for i, (model, data) in enumerate(zip(models, batches)):
            times[i].append(time_predict_ms(model, data))
    return [statistics.median(t) for t in times]


def count_flops(model: nn.Module, data: dict) -> float:
    """FLOPs (multiply-adds, mmengine's convention) of the dense part, in G."""
    analyzer = FlopAnalyzer(DenseForward(model), (data['inputs'], ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return analyzer.total() / 1e9


def benchmark(args: argparse.Namespace) -> List[Dict[str, object]]:
    """Measure every config; returns one row per config with the ratios to the first."""
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [parse_shape(s) for s in args.shapes]
    models, rows = [], []
    for config in args.configs:
        model, name = build_detector(config, args.device)
        rows.append(dict(model=name, params_M=sum(p.numel() for p in model.parameters()) / 1e6))
        if getattr(args, 'fuse_conv_bn', False):
            from mmcv.cnn import fuse_conv_bn
            model = fuse_conv_bn(model)  # after counting: fusing drops the BN parameters
        models.append(model)
    for shape, label in zip(shapes, args.shapes):
        batches = [make_batch(model, shape, args.device) for model in models]
        if not args.no_flops:
            for row, model, data in zip(rows, models, batches):
                row[f'GFLOPs@{label}'] = count_flops(model, data)
        latencies = interleaved_median_ms(models, batches, args.warmup, args.runs)
        for row, ms in zip(rows, latencies):
            row[f'ms@{label}'] = ms
        print(f'{label}: ' + ', '.join(f"{r['model']} {r[f'ms@{label}']:.0f} ms" for r in rows),
              flush=True)
    first = rows[0]
    for row in rows:
        row['param_ratio'] = row['params_M'] / first['params_M']
        for label in args.shapes:
            row[f'speedup@{label}'] = first[f'ms@{label}'] / row[f'ms@{label}']
    return rows


def columns(shapes: Sequence[str], with_flops: bool) -> List[str]:
    cols = ['model', 'params_M', 'param_ratio']
    for label in shapes:
        cols += ([f'GFLOPs@{label}'] if with_flops else []) + [f'ms@{label}',
                                                               f'speedup@{label}']
    return cols


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.3f}' if value < 10 else f'{value:.1f}'
    return str(value)


def write_outputs(rows: List[Dict[str, object]], cols: List[str], out_dir: str,
                  conditions: str) -> str:
    """Write speed.csv, speed.md and speed.png; return the Markdown table."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'speed.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    lines += ['| ' + ' | '.join(_fmt(r[c]) for c in cols) + ' |' for r in rows]
    table = '\n'.join(lines)
    with open(osp.join(out_dir, 'speed.md'), 'w') as f:
        f.write(f'{conditions}\n\n{table}\n')
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        ms_cols = [c for c in cols if c.startswith('ms@')]
        fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.6))
        width = 0.8 / len(ms_cols)
        for i, c in enumerate(ms_cols):
            ax.bar([j + i * width for j in range(len(rows))], [r[c] for r in rows], width,
                   label=c.replace('ms@', ''))
        ax.set_xticks([j + width * (len(ms_cols) - 1) / 2 for j in range(len(rows))])
        ax.set_xticklabels([r['model'] for r in rows], rotation=20, ha='right', fontsize=7)
        ax.set_ylabel('median latency (ms), batch 1')
        ax.legend()
        fig.tight_layout()
        fig.savefig(osp.join(out_dir, 'speed.png'), dpi=120)
        plt.close(fig)
    except ImportError:
        print('matplotlib not installed: speed.png not written')
    return table


def main() -> None:
    args = parse_args()
    rows = benchmark(args)
    conditions = (f'device {args.device}, torch {torch.__version__}, '
                  f'{torch.get_num_threads()} threads, batch 1, random weights, '
                  f'{"BN fused into convs, " if args.fuse_conv_bn else ""}median of '
                  f'{args.runs} runs after {args.warmup} warm-up, models timed round-robin; '
                  'FLOPs: dense part '
                  '(backbone, RPN head, R-FCN score maps), mmengine FlopAnalyzer')
    table = write_outputs(rows, columns(args.shapes, not args.no_flops), args.out_dir,
                          conditions)
    print(conditions)
    print(table)
    print(f'written: {osp.join(args.out_dir, "speed.csv")}, speed.md, speed.png')


if __name__ == '__main__':
    main()
