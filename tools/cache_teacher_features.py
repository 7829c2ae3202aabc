"""Fill the teacher-feature cache of a mimic config before training.

    python tools/cache_teacher_features.py CONFIG [--cfg-options k=v ...] [--device cuda]
                                            [--overwrite]

Writes ``model.teacher_cache.dir`` (LMDB): the teacher's mimicked map (with ``mimic_levels``:
every teacher level a pair mimics) of every training image in every augmentation state the
training pipeline can draw (resize from its fixed set, flip). Prints the size estimate (all
levels) and refuses to start beyond ``teacher_cache.max_gb``; shows a progress bar;
an interrupted run resumes where it stopped (each entry is one transaction: a half-written entry
is never readable). Under DDP (``torchrun ... --launcher pytorch``) rank 0 writes, the others
wait. The library is :func:`mmmimic.teacher_cache.fill_cache_from_config`.

The target folder is checked first: a teacher cache of the same identity is resumed (a complete
one is left as it is); a teacher cache of another identity (another teacher, checkpoint,
pipeline, preprocessing or dtype) is refused, naming what differs, unless ``--overwrite``; a
folder holding an LMDB that is not a teacher cache, or a symlinked ``data.mdb`` / ``lock.mdb``,
is refused even with ``--overwrite`` (it is never written into). A full disk stops the tool
with a message naming the store. Exit code 1 with the message on any refusal.
"""
import argparse
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a FeatureMimicDistiller config with model.teacher_cache')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (key=value)')
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a teacher cache of another identity in '
                             'teacher_cache.dir (never an LMDB that is not a teacher cache)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='DDP: rank 0 writes, the other ranks wait')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import mmmimic  # noqa: F401  (registers the modules)
    from mmengine.config import Config
    from mmengine.dist import init_dist

    from mmmimic.teacher_cache import fill_cache_from_config
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.launcher != 'none':
        init_dist(args.launcher)
    return fill_cache_from_config(cfg, progress=not args.no_progress, device=args.device,
                                  overwrite=args.overwrite)


if __name__ == '__main__':
    from mmmimic.teacher_cache import CacheError
    try:
        main()
    except (CacheError, ValueError) as err:  # refusals: the message, exit code 1
        sys.exit(f'cache_teacher_features.py: {err}')
