# mmmimic training entry point: mmdet's tools/train.py flags, plus up-front input checks
# (the work is done by mmmimic.apis.training).
import argparse
import os
import sys

from mmengine.config import DictAction

import mmmimic  # noqa: F401  (registers mmmimic modules; torch>=2.6 checkpoint loading)
from mmmimic.apis import MIMIC_LOSSES
from mmmimic.apis.training import build_train_config, train
from mmmimic.utils import add_common_args, apply_common_args, run_main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector (or a mimic student)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training (needs a CUDA/NPU/MLU device)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='If a checkpoint path is given, resume from it; if no path is given, resume '
        'from the latest checkpoint in the work directory.')
    parser.add_argument(
        '--teacher', nargs=2, metavar=('TEACHER_CONFIG', 'TEACHER_CKPT'),
        help='feature mimic: wrap the config\'s model into a FeatureMimicDistiller with this '
        'trained teacher (mmmimic.apis.wrap_with_teacher); TEACHER_CONFIG is a path or '
        'mmdet::DIR/NAME.py (a config mmdet ships)')
    parser.add_argument('--mimic-weight', type=float, default=1.0,
                        help='with --teacher: the mimic loss weight lambda_1')
    parser.add_argument('--mimic-loss', default='ProposalSampledL2Loss', choices=MIMIC_LOSSES,
                        help='with --teacher: the mimic loss')
    parser.add_argument('--student-scale', type=float, default=None,
                        help='with --teacher: cross-scale mimic, the student sees the batch '
                        'resized by this factor (e.g. 0.5)')
    parser.add_argument('--mimic-student-feature', type=int, default=None, metavar='INDEX',
                        help='with --teacher: mimic one student map, an index into its '
                        'extract_feat() maps (default: a single-level student\'s last map; an '
                        'FPN student mimics its level pairs, see --mimic-levels)')
    parser.add_argument('--mimic-teacher-feature', type=int, default=None, metavar='INDEX',
                        help='with --teacher: the teacher map it regresses to (same indexing; '
                        'default: the last)')
    parser.add_argument('--mimic-levels', default=None, metavar='S:T,S:T',
                        help='with --teacher: the level pairs of pyramid mimic (student level '
                        ':teacher level, e.g. 0:1,1:2), or auto (default for an FPN student: '
                        'every student level that has a teacher level of its stride)')
    parser.add_argument('--no-teacher-check', action='store_true',
                        help='with --teacher: skip scoring the teacher before training')
    parser.add_argument('--teacher-check-images', type=int, default=20,
                        help='with --teacher: validation images the teacher check scores')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='allow a fresh run in a work dir that holds checkpoints of an earlier run')
    add_common_args(parser)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy '
        'format will be merged into config file. If the value to be overwritten is a list, '
        'it should be like key="[a,b]" or key=a,b. It also allows nested list/tuple values, '
        'e.g. key="[(a,b),(c,d)]". Note that the quotation marks are necessary and that no '
        'white space is allowed.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch / torchrun pass --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    apply_common_args(args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    train(build_train_config(args), overwrite=args.overwrite)


if __name__ == '__main__':
    sys.exit(run_main(main))
