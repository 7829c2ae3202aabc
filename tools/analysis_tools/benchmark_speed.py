"""Parameters, FLOPs and inference latency of detectors: the paper's Table 3 (Li et al. 2017).

For each config: parameters of the whole detector, FLOPs of its dense part (backbone, neck, RPN
head and, for R-FCN, the position-sensitive score maps; counted by ``mmengine.analysis``) and the
median time of ``model.predict`` at batch 1 after warm-up (proposals, NMS and RoI pooling
included), at each input size, timing the models round-robin (robust ratios on a shared
machine). Ratios are relative to the first config. The work is done by
:mod:`mmmimic.apis.speed`.

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
import os.path as osp

from mmmimic.apis.speed import (benchmark_detectors, speed_columns, speed_conditions,
                                write_speed_outputs)


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


def main() -> None:
    args = parse_args()
    rows = benchmark_detectors(args.configs, args.shapes, warmup=args.warmup, runs=args.runs,
                               threads=args.threads, device=args.device,
                               flops=not args.no_flops, fuse_conv_bn=args.fuse_conv_bn)
    conditions = speed_conditions(args.device, args.runs, args.warmup, args.fuse_conv_bn)
    table = write_speed_outputs(rows, speed_columns(args.shapes, not args.no_flops),
                                args.out_dir, conditions)
    print(conditions)
    print(table)
    print(f'written: {osp.join(args.out_dir, "speed.csv")}, speed.md, speed.png')


if __name__ == '__main__':
    main()
