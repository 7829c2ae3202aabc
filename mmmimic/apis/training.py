# Copyright (c) mmmimic contributors. All rights reserved.
"""The training run behind ``tools/train.py``: the command line merged into the config as mmdet's
``tools/train.py`` does (plus ``--teacher``), and the checked run of the Runner."""
import os.path as osp

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmmimic.apis.mimic_wrap import wrap_with_teacher
from mmmimic.utils import (check_checkpoint_matches_model, check_config_dump, check_config_path,
                           check_fresh_work_dir, config_dump_path, find_resume_checkpoint,
                           restore_on_failure, setup_cpu_distributed)


def build_train_config(args) -> Config:
    """Merge the config file with the command line exactly as mmdet's tools/train.py does."""
    cfg = Config.fromfile(check_config_path(args.config))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.teacher is not None:
        cfg = wrap_with_teacher(
            cfg, *args.teacher, mimic_weight=args.mimic_weight, mimic_loss=args.mimic_loss,
            student_scale=args.student_scale, teacher_check=not args.no_teacher_check,
            teacher_check_images=args.teacher_check_images,
            student_feature=args.mimic_student_feature,
            teacher_feature=args.mimic_teacher_feature,
            mimic_levels=getattr(args, 'mimic_levels', None))
    elif args.student_scale is not None or args.mimic_weight != 1.0 or \
            args.mimic_student_feature is not None or args.mimic_teacher_feature is not None \
            or getattr(args, 'mimic_levels', None) is not None:
        raise ValueError('--student-scale / --mimic-weight / --mimic-*-feature need --teacher '
                         '(so does --mimic-levels)')

    # work_dir priority: CLI > config file > config filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        import torch
        from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available
        if not (is_cuda_available() or is_npu_available() or is_mlu_available()):
            raise RuntimeError(
                f'--amp needs a CUDA, NPU or MLU device (mmengine AmpOptimWrapper); torch '
                f'{torch.__version__} sees none on this machine. Drop --amp to train in fp32.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError(f'{args.config}: --auto-scale-lr needs "auto_scale_lr" with '
                               '"enable" and "base_batch_size" in the config.')

    # resume priority: explicit path > auto resume
    if args.resume == 'auto':
        # Resolve the checkpoint here (inside this work dir), so it is checked like an explicit
        # one and a copied work dir never resumes from the original run's files.
        cfg.resume = True
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print(f'--resume: no last_checkpoint in {cfg.work_dir}; starting a new run')
            cfg.resume = False
        else:
            print(f'--resume: continuing from {cfg.load_from}')
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('load_from') and not osp.isfile(cfg.load_from) and \
            '://' not in str(cfg.load_from):
        raise FileNotFoundError(f'load_from checkpoint not found: {cfg.load_from}')

    return cfg


def train(cfg: Config, overwrite: bool = False) -> None:
    """Train ``cfg`` (from :func:`build_train_config`) with its up-front checks.

    Args:
        cfg: the merged config.
        overwrite: allow a fresh run in a work dir that holds checkpoints of an earlier run.
    """
    if not overwrite:
        check_fresh_work_dir(cfg.work_dir, resume=bool(cfg.get('resume', False)))
        if not cfg.get('resume', False):
            check_config_dump(cfg)
    # torchrun / dist_train.sh on a CPU-only machine: gloo, no CUDA device ids
    setup_cpu_distributed(cfg)

    progress = _Progress()
    # a run refused or failed before its first iteration leaves the work dir's config dump as it
    # was (the Runner rewrites it when built, before any check)
    with restore_on_failure(config_dump_path(cfg), lambda: progress.trained):
        if 'runner_type' not in cfg:
            runner = Runner.from_cfg(cfg)
        else:
            runner = RUNNERS.build(cfg)
        runner.register_hook(progress, priority='LOWEST')

        # A checkpoint from another model fails now, not as a warning buried in the log.
        if cfg.get('load_from') and '://' not in str(cfg.load_from):
            check_checkpoint_matches_model(
                runner.model.module if hasattr(runner.model, 'module') else runner.model,
                cfg.load_from, strict=bool(cfg.get('resume', False)))

        runner.train()


class _Progress(Hook):
    """Records whether a training iteration ran in this process."""

    def __init__(self) -> None:
        self.trained = False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.trained = True
