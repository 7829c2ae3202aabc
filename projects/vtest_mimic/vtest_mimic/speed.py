"""The speed table of the vtest study: params, FLOPs and CPU latency of every model at its own
input, and each model's speed-up over the teacher of its kind."""
import json
import os.path as osp
from typing import Dict, Sequence

from .common import REPO_ROOT, log
from .models import (BY_NAME, CONFIG_DIR, OLD_CONFIG_DIR, BenchmarkModel, speed_config,
                     speed_configs)


def measure_speed(args, models: Sequence[BenchmarkModel]) -> Dict[str, Dict[str, float]]:
    """Params, FLOPs and CPU latency at the full frame size (``--speed-shape``), every model at
    its own input (half-input students resize inside the model), speed-ups over the teacher of
    the same kind (RPN students over the RPN teacher, R-FCNs over the R-FCN teacher, the mmdet
    block's students over its Faster R-CNN teacher).

    The timings are :func:`mmmimic.apis.speed.benchmark_detectors`' (random weights, 1 warm-up
    round, ``--speed-runs`` timed rounds, the models round-robin), written as
    ``tools/analysis_tools/benchmark_speed.py`` writes them (``speed/speed.{csv,md,png}`` in the
    output folder); ``speed/speed.json`` keeps the result, reused while the timed configs are
    the same (also when an earlier run named them by their ``configs/vtest/`` path)."""
    out_dir = osp.join(args.out, 'speed')
    out_json = osp.join(out_dir, 'speed.json')
    configs = speed_configs(models)
    if osp.isfile(out_json) and not args.force_speed:
        saved = json.load(open(out_json))
        moved = [c.replace(OLD_CONFIG_DIR, CONFIG_DIR, 1) if c.startswith(OLD_CONFIG_DIR) else c
                 for c in saved.get('configs') or []]
        if moved == configs:
            return saved['models']
    from mmmimic.apis.speed import (benchmark_detectors, speed_columns, speed_conditions,
                                    write_speed_outputs)
    shape, runs, warmup = args.speed_shape, args.speed_runs, 1
    log(f'speed: timing {len(configs)} configs at {shape} (CPU, {runs} runs after {warmup} '
        f'warm-up) -> {out_dir}')
    rows = benchmark_detectors([osp.join(REPO_ROOT, c) for c in configs], [shape],
                               warmup=warmup, runs=runs)
    write_speed_outputs(rows, speed_columns([shape], True), out_dir,
                        speed_conditions('cpu', runs, warmup, False))
    by_config = dict(zip(configs, rows))  # rows are in the order of the configs given
    names = {m.name for m in models}
    speed = {}
    for m in models:
        row = by_config[speed_config(m)]
        ref_name = ('teacher-rfcn' if 'rfcn' in m.config and 'teacher-rfcn' in names
                    else 'mm-teacher' if m.block == 'mmdet' else 'teacher')
        ref = by_config[speed_config(BY_NAME[ref_name])]
        speed[m.name] = dict(params_m=row['params_M'], gflops=row.get(f'GFLOPs@{shape}'),
                             latency_ms=row[f'ms@{shape}'], reference=ref_name,
                             speedup=ref[f'ms@{shape}'] / row[f'ms@{shape}'])
    with open(out_json, 'w') as f:
        json.dump(dict(configs=configs, models=speed), f, indent=1)
    return speed
