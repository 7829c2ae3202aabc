# Copyright (c) mmmimic contributors. All rights reserved.
"""Parameters, FLOPs and inference latency of detectors: the paper's Table 3 (Li et al. 2017),
behind ``tools/analysis_tools/benchmark_speed.py``.

For each config: parameters of the whole detector, FLOPs of its dense part (backbone, neck, RPN
head and, for R-FCN, the position-sensitive score maps; counted by ``mmengine.analysis``) and the
median time of ``model.predict`` at batch 1 (proposals, NMS and RoI pooling included), at each
input size, timing the models round-robin (:func:`mmmimic.utils.time_round_robin`; robust ratios
on a shared machine). Ratios are relative to the first config. Weights are random.
"""
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmmimic.utils import markdown_table, parse_shape, time_round_robin


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


def make_batch(data_preprocessor: nn.Module, shape: Tuple[int, int],
               device: str = 'cpu') -> dict:
    """One random uint8 frame of ``shape`` (seed 0) with its data sample, through
    ``data_preprocessor`` (a detector's, or one built alone as the ONNX speed tool does)."""
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), pad_shape=(h, w)))
    return data_preprocessor(dict(inputs=[img.to(device)], data_samples=[sample]), False)


def predict_fn(model: nn.Module, data: dict):
    """A callable running one ``model.predict`` on ``data`` (synchronised on CUDA)."""
    def fn() -> None:
        with torch.no_grad():
            model.predict(data['inputs'], data['data_samples'])
            if data['inputs'].is_cuda:
                torch.cuda.synchronize()
    return fn


def count_flops(model: nn.Module, data: dict) -> float:
    """FLOPs (multiply-adds, mmengine's convention) of the dense part, in G."""
    analyzer = FlopAnalyzer(DenseForward(model), (data['inputs'], ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return analyzer.total() / 1e9


def benchmark_detectors(configs: Sequence[str], shapes: Sequence[str] = ('1000x1500', '480x640'),
                        *, warmup: int = 2, runs: int = 5, threads: Optional[int] = None,
                        device: str = 'cpu', flops: bool = True,
                        fuse_conv_bn: bool = False) -> List[Dict[str, object]]:
    """Measure every config; returns one row per config with the ratios to the first.

    Args:
        configs: config files; ratios are to the first.
        shapes: input sizes ``'HxW'``.
        warmup: untimed rounds per shape.
        runs: timed rounds per shape (median).
        threads: torch CPU threads (default: the current count).
        device: where the models run.
        flops: count the FLOPs of the dense part.
        fuse_conv_bn: fold BN into the preceding convs before timing (deploy setting).
    """
    if threads:
        torch.set_num_threads(threads)
    models, rows = [], []
    for config in configs:
        model, name = build_detector(config, device)
        rows.append(dict(model=name, params_M=sum(p.numel() for p in model.parameters()) / 1e6))
        if fuse_conv_bn:
            from mmcv.cnn import fuse_conv_bn as fuse
            model = fuse(model)  # after counting: fusing drops the BN parameters
        models.append(model)
    for label in shapes:
        shape = parse_shape(label)
        batches = [make_batch(model.data_preprocessor, shape, device) for model in models]
        if flops:
            for row, model, data in zip(rows, models, batches):
                row[f'GFLOPs@{label}'] = count_flops(model, data)
        timings = time_round_robin([predict_fn(m, d) for m, d in zip(models, batches)],
                                   rounds=runs, warmup=warmup,
                                   labels=[r['model'] for r in rows])
        for row, timing in zip(rows, timings):
            row[f'ms@{label}'] = timing.median_ms
        print(f'{label}: ' + ', '.join(f"{r['model']} {r[f'ms@{label}']:.0f} ms" for r in rows),
              flush=True)
    first = rows[0]
    for row in rows:
        row['param_ratio'] = row['params_M'] / first['params_M']
        for label in shapes:
            row[f'speedup@{label}'] = first[f'ms@{label}'] / row[f'ms@{label}']
    return rows


def speed_columns(shapes: Sequence[str], with_flops: bool) -> List[str]:
    """The columns of speed.csv / speed.md for ``shapes``."""
    cols = ['model', 'params_M', 'param_ratio']
    for label in shapes:
        cols += ([f'GFLOPs@{label}'] if with_flops else []) + [f'ms@{label}',
                                                               f'speedup@{label}']
    return cols


def speed_conditions(device: str, runs: int, warmup: int, fuse_conv_bn: bool) -> str:
    """The measurement conditions line written above the table."""
    return (f'device {device}, torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads, batch 1, random weights, '
            f'{"BN fused into convs, " if fuse_conv_bn else ""}median of '
            f'{runs} runs after {warmup} warm-up, models timed round-robin '
            '(torch.utils.benchmark); FLOPs: dense part '
            '(backbone, RPN head, R-FCN score maps), mmengine FlopAnalyzer')


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.3f}' if value < 10 else f'{value:.1f}'
    return str(value)


def write_speed_outputs(rows: List[Dict[str, object]], cols: List[str], out_dir: str,
                        conditions: str) -> str:
    """Write speed.csv, speed.md and speed.png; return the Markdown table."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'speed.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table([[_fmt(r[c]) for c in cols] for r in rows], cols)
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
