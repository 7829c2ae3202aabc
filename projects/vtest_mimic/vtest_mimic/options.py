"""The options of a vtest study run: the presets (mmengine config files in
``projects/vtest_mimic/configs/presets/``, overridable with ``--cfg-options``) and the command
line shared by the run and the validation sweeps."""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

from mmengine.config import Config, DictAction

from .device import resolve_device
from .models import BY_NAME, INCEPTION_BLOCKS, MODELS, TEACHER_CANDIDATES

#: the presets' folder
PRESET_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'presets')
#: the keys a preset sets (``--cfg-options`` may override only these)
PRESET_KEYS = ('seeds', 'iters', 'teacher', 'teacher_iters', 'teacher_val_interval',
               'stage2_iters', 'mimic_weight', 'mimic_weights', 'blocks', 'mmdet_iters',
               'mmdet_teacher_iters')
#: where the teacher and 2 seeds of the cross-scale block were timed (``--quick``'s help)
QUICK_TIMES = ('projects/vtest_mimic/results/teacher_sweep/teacher_sweep.md',
               'projects/vtest_mimic/results/xs5/report.md')


def load_preset(name: str, cfg_options: Optional[Dict] = None) -> Dict:
    """The preset ``name`` (``quick`` or ``default``) as a plain dict, ``cfg_options``
    (``{'iters': 300, 'mimic_weights.mimic-1-4': 1}``) merged over it.

    Raises:
        KeyError: ``cfg_options`` names a key no preset has.
    """
    cfg = Config.fromfile(osp.join(PRESET_DIR, f'{name}.py'))
    unknown = sorted({k.split('.')[0] for k in cfg_options or {}} - set(PRESET_KEYS))
    if unknown:
        raise KeyError(f'--cfg-options {", ".join(unknown)}: not a preset key (one of '
                       f'{", ".join(PRESET_KEYS)})')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return {k: cfg[k] for k in PRESET_KEYS}


def build_parser() -> argparse.ArgumentParser:
    """The run's command line (the sweeps accept it too)."""
    parser = argparse.ArgumentParser(description='Teacher / mimic / scratch students on vtest.avi')
    parser.add_argument('--out', default='work_dirs/mimic_demo', help='output folder')
    parser.add_argument('--data-dir', default='data/vtest',
                        help='converted frames + annotations (the configs\' data_root)')
    parser.add_argument('--video', help='path of vtest.avi (default: found or downloaded)')
    parser.add_argument('--quick', action='store_true',
                        help='the quick preset (configs/presets/quick.py): 3 seeds, teacher + '
                        'cross-scale block. Measured on 2 CPU cores: the teacher alone 39 min '
                        f'({QUICK_TIMES[0]}); 2 seeds of the block trained and every model '
                        f'scored, teacher and cache reused, 44 min ({QUICK_TIMES[1]}); about '
                        '1.7 h fresh (projects/vtest_mimic/README.md, Cost)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override preset keys (' + ', '.join(PRESET_KEYS) + '), e.g. '
                        'iters=300 mimic_weights.mimic-1-4=1')
    parser.add_argument('--seeds', nargs='+', type=int, help='override the preset\'s seeds')
    parser.add_argument('--blocks', nargs='+',
                        choices=['cross-scale', 'same-input', 'stage2', 'mmdet'],
                        help='override the preset\'s blocks (the Inception RPN teacher is trained '
                        'for the first three, the mmdet block trains its own)')
    parser.add_argument('--iters', type=int, help='stage-1 student iterations')
    parser.add_argument('--teacher', choices=list(TEACHER_CANDIDATES),
                        help='the RPN teacher (default: the preset\'s; candidates compared on '
                             'validation by tools/teacher_sweep.py)')
    parser.add_argument('--teacher-iters', type=int, help='teacher iterations')
    parser.add_argument('--mmdet-iters', type=int, help='mmdet block: student iterations')
    parser.add_argument('--mmdet-teacher-iters', type=int,
                        help='mmdet block: teacher iterations (validated every '
                        '--teacher-val-interval, the best checkpoint kept)')
    parser.add_argument('--teacher-val-interval', type=int,
                        help='validate the teacher every N iterations (best checkpoint kept)')
    parser.add_argument('--stage2-iters', type=int, help='stage-2 iterations')
    parser.add_argument('--mimic-weight', type=float,
                        help='lambda1 of every mimic student (default: the preset\'s values, '
                             'chosen on validation, see configs/presets/)')
    parser.add_argument('--mimic-weights', nargs='+', default={}, action=DictAction,
                        metavar='MODEL=LAMBDA1',
                        help='lambda1 of single mimic models, over --mimic-weight and the '
                             'preset (e.g. mimic-1-4=1)')
    parser.add_argument('--no-cache', action='store_true',
                        help='run the live teacher instead of the teacher-feature cache')
    parser.add_argument('--cache-max-gb', type=float, default=20.0)
    parser.add_argument('--n-boot', type=int, default=1000, help='frame-bootstrap resamples')
    parser.add_argument('--boot-block', type=int, default=10,
                        help='resample test frames in blocks of this many consecutive frames '
                             '(neighbouring video frames are alike; '
                             'projects/vtest_mimic/docs/statistics.md)')
    parser.add_argument('--gap', type=int, help='frames dropped between splits (builder default)')
    parser.add_argument('--workers', type=int, default=1, help='dataloader workers')
    parser.add_argument('--device', default='auto',
                        help='where every training, cache-fill and scoring stage runs: auto '
                        '(cuda if torch.cuda.is_available(), else cpu), cpu, cuda or cuda:N; '
                        'not part of a stage\'s stamp (models trained on one device are '
                        'reused on another); the speed table stays on the CPU')
    parser.add_argument('--speed-runs', type=int, default=5)
    parser.add_argument('--speed-shape', default='480x640', help='HxW of the speed benchmark')
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--force', nargs='*', default=[], choices=list(BY_NAME),
                        help='retrain (and re-test) these models')
    parser.add_argument('--force-data', action='store_true', help='rebuild the dataset')
    parser.add_argument('--force-eval', action='store_true', help='re-test every model')
    parser.add_argument('--force-speed', action='store_true', help='re-measure speed')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the report, results.json and mr_fppi.png of an earlier '
                        'run in --out (refused otherwise, before any stage runs)')
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The run's options: the command line over the preset (``--quick``: quick, else default)
    over ``--cfg-options``. Bad values exit through ``parser.error`` (status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.preset = 'quick' if args.quick else 'default'
    try:
        args.device = resolve_device(args.device)
    except ValueError as err:
        parser.error(err.args[0])
    try:
        preset = load_preset(args.preset, args.cfg_options)
    except KeyError as err:
        parser.error(err.args[0])
    # --mimic-weight sets every mimic student; without it the preset's exceptions apply
    weights = dict(preset['mimic_weights']) if args.mimic_weight is None else {}
    for key in ('seeds', 'iters', 'teacher', 'teacher_iters', 'teacher_val_interval',
                'stage2_iters', 'mimic_weight', 'mmdet_iters', 'mmdet_teacher_iters'):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    if args.teacher not in TEACHER_CANDIDATES:
        parser.error(f'teacher {args.teacher!r} is not one of {", ".join(TEACHER_CANDIDATES)}')
    mimic_names = [m.name for m in MODELS if m.mimic]
    for name, value in args.mimic_weights.items():
        item = f'{name}={value}'
        if name not in mimic_names:
            parser.error(f'--mimic-weights {item}: {name!r} is not a mimic model '
                         f'(one of {", ".join(mimic_names)})')
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            parser.error(f'--mimic-weights {item}: {value!r} is not a number')
        weights[name] = float(value)
    for name, w in [('--mimic-weight', args.mimic_weight), *weights.items()]:
        if not w >= 0:
            parser.error(f'lambda1 must be >= 0: {name} = {w}')
    args.mimic_weights = weights
    blocks = args.blocks or [b for b in preset['blocks'] if b != 'teacher']
    # the Inception RPN teacher only where a block reads it
    args.blocks = (('teacher', ) if set(blocks) & set(INCEPTION_BLOCKS) else ()) + tuple(blocks)
    if 'stage2' in args.blocks and 'cross-scale' not in args.blocks:
        parser.error('--blocks stage2 needs cross-scale (stage 2 starts from its RPNs)')
    if 'stage2' in args.blocks and args.stage2_iters <= 0:
        parser.error('--blocks stage2 needs --stage2-iters > 0')
    if args.teacher_val_interval > args.teacher_iters:
        args.teacher_val_interval = args.teacher_iters
    if 'mmdet' in args.blocks and min(args.mmdet_iters, args.mmdet_teacher_iters) <= 0:
        parser.error('--blocks mmdet needs mmdet_iters and mmdet_teacher_iters > 0')
    return args
