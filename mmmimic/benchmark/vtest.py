"""Models and run configs of the built-in vtest.avi benchmark.

Shared by ``tools/mimic_demo.py`` (teacher, mimic and scratch students, evaluated and timed) and
``benchmarks/vtest_mimic_sweep.py`` (mimic hyper-parameters on the validation split), so that
both train with the same schedule rescaling, seeds and data paths.
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

#: repository root: the configs below are relative to it
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass(frozen=True)
class BenchmarkModel:
    """One model of the benchmark.

    Attributes:
        name: short name (work-dir and result-folder name).
        config: training config, relative to the repository root.
        label: name in the report table and plot legend.
        width: student width (0.5, 0.25); None for the teacher.
        mimic: trained by feature mimic of the teacher (else from scratch).
    """
    name: str
    config: str
    label: str
    width: Optional[float] = None
    mimic: bool = False


MODELS = (
    BenchmarkModel('teacher', 'configs/vtest/rpn_inception_vtest.py', 'Inception RPN (teacher)'),
    BenchmarkModel('mimic-1-2', 'configs/vtest/rpn_inception-1-2_mimic-inception_vtest.py',
                   '1/2-Inception RPN, mimic', 0.5, True),
    BenchmarkModel('scratch-1-2', 'configs/vtest/rpn_inception-1-2_vtest.py',
                   '1/2-Inception RPN, scratch', 0.5),
    BenchmarkModel('mimic-1-4', 'configs/vtest/rpn_inception-1-4_mimic-inception_vtest.py',
                   '1/4-Inception RPN, mimic', 0.25, True),
    BenchmarkModel('scratch-1-4', 'configs/vtest/rpn_inception-1-4_vtest.py',
                   '1/4-Inception RPN, scratch', 0.25),
)

PRESETS = {
    # iterations of batch 2 (320x384 crops): every student gets ``iters``; the teacher, which the
    # paper takes fully trained, gets ``teacher_iters``. The quick preset fits 30 min on 2 CPU
    # cores (measured numbers in README.md).
    'quick': dict(iters=600, teacher_iters=1500),
    'full': dict(iters=3000, teacher_iters=6000),
}
#: the test part of the vtest release (build_vtest: set00 train, set01 val, set02 test)
TEST_SET = 2


def speed_config(model: BenchmarkModel) -> str:
    """The plain detector config timed for ``model``: its own, or for a mimic student its
    scratch twin's (the distiller predicts with the student only)."""
    if not model.mimic:
        return model.config
    twins = [m for m in MODELS if m.width == model.width and not m.mimic]
    if len(twins) != 1:
        raise ValueError(f'{model.name}: expected one scratch model of width {model.width} in '
                         f'MODELS, found {[m.name for m in twins]}')
    return twins[0].config


def speed_configs() -> List[str]:
    """The distinct configs to time, in the order of :data:`MODELS`."""
    return list(dict.fromkeys(speed_config(m) for m in MODELS))


def vtest_train_config(config: str,
                       data_dir: str,
                       seed: int,
                       work_dir: str,
                       iters: int,
                       workers: int = 1,
                       teacher_ckpt: Optional[str] = None):
    """The mmengine config of one benchmark run: ``config`` on ``data_dir`` for ``iters``
    iterations, its schedule rescaled (warm-up over the first 10 % (at most 100 iterations), one
    10x step at 75 %), checkpoints at the half and the end, no validation during training.

    Args:
        config: a config path, relative to the repository root.
        data_dir: the converted vtest release (the datasets' ``data_root``).
        seed: the run's random seed.
        work_dir: the run's work dir; its last two path parts name the experiment.
        iters: training iterations.
        workers: dataloader workers.
        teacher_ckpt: the teacher checkpoint of a mimic student.

    Returns:
        :class:`mmengine.config.Config`.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    data_root = osp.abspath(data_dir) + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # scored by the test stage, not mid-training
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler[0].end = min(100, max(1, iters // 10))
    cfg.param_scheduler[1].end = iters
    cfg.param_scheduler[1].milestones = [max(1, int(iters * 0.75))]
    cfg.default_hooks.checkpoint.interval = max(1, iters // 2)
    cfg.default_hooks.logger.interval = max(1, min(20, iters // 10))
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{osp.basename(osp.dirname(work_dir))}_{osp.basename(work_dir)}'
    cfg.visualizer.name = f'vis_{cfg.experiment_name}'
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = workers
        cfg[loader].persistent_workers = workers > 0
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    return cfg
