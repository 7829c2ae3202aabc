"""The model list and run configs of the vtest study.

Shared by the study's run (:mod:`.job`) and its validation sweeps (``tools/weight_sweep.py``,
``tools/teacher_sweep.py``), so that every run trains with the same schedule rescaling, seeds,
data paths, initial weights and teacher-feature cache. The presets are config files
(``configs/presets/``).

The study's blocks (the project's README):

* ``teacher``: the full-width Inception RPN on the full-size frames, its checkpoint chosen on the
  validation split (``save_best``); the R-FCN teacher of two-stage mimic is fine-tuned from it.
* ``cross-scale`` (the headline, paper Sec. 3.5 / Table 10): 1/2- and 1/4-Inception students fed
  the frames at half the teacher's input. Per width: feature mimic with the deconv neck, the same
  student from scratch, and the student without the deconv from scratch (the paper's control).
* ``same-input`` (Tables 5/7): the students at the teacher's input, mimic vs scratch.
* ``stage2`` (Tables 6/9): 1/2-Inception R-FCNs (cross-scale, deconv) fine-tuned from the
  stage-1 mimic RPN and from the stage-1 scratch RPN, and two-stage mimic; every one has the
  same total iterations (stage 1 + stage 2).
* ``mmdet`` (pyramid mimic on mmdet's own detectors): a Faster R-CNN R-18-FPN teacher from
  mmdet's model config, trained from scratch at full input (its checkpoint chosen on the
  validation split), and two half-width students at half input, each with pyramid mimic and from
  scratch: a Faster R-CNN (FPN two-stage) and a RetinaNet (one-stage, mimicking the two-stage
  teacher). Their level rule and mimic weight are chosen on validation
  (``tools/mmdet_sweep.py``).
"""
import copy
import os.path as osp
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

#: repository root: the configs below are relative to it
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
#: the study's configs, relative to the repository root
CONFIG_DIR = 'projects/vtest_mimic/configs/'
#: where the configs lived before the study moved into ``projects/`` (old work dirs' stamps)
OLD_CONFIG_DIR = 'configs/vtest/'
#: the metric the teacher's checkpoint is chosen by on the validation split (lower is better)
VAL_METRIC = 'caltech/Reasonable_MR-2'
#: how a model is scored on the validation split (the teacher's checkpoint choice, the report's
#: precondition, the validation sweeps)
VAL_EVALUATOR = [dict(type='CaltechMRMetric', settings=['Reasonable'], resize_dets=True)]


@dataclass(frozen=True)
class BenchmarkModel:
    """One model of the benchmark.

    Attributes:
        name: short name (work-dir and result-folder name).
        config: training config, relative to the repository root.
        label: name in the report tables and plot legend.
        block: ``'teacher'``, ``'cross-scale'``, ``'same-input'`` or ``'stage2'``.
        width: student width (0.5, 0.25); None for a teacher.
        mimic: trained with a teacher (feature mimic).
        teacher: the model it mimics (mimic models) or is fine-tuned from (the R-FCN teacher).
        init_from: stage 2: the stage-1 model whose weights initialise it.
        init_group: models with the same group start from identical initial weights (per seed)
            for the parts they share: a mimic student and its scratch controls.
        speed_config: the plain detector config that is timed (a mimic student is timed as its
            scratch twin: the distiller predicts with the student only).
        seeded: trained once per seed (students); teachers are trained once, with the first seed.
        run_dir: the folder (under the output's ``shared/``) of a model trained once; default its
            name. The RPN teacher's candidates (:data:`TEACHER_CANDIDATES`) are all named
            ``teacher`` (the students refer to it by that name) and differ here.
        selects_on_val: a teacher outside the ``teacher`` block (the mmdet block's): validated
            while it trains, its best validation checkpoint kept, like the RPN teacher.
        cfg_options: ``((key, value), ...)`` merged into the config (a validation sweep's
            variant, e.g. ``(('model.level_rule', 'all'),)``).
    """
    name: str
    config: str
    label: str
    block: str
    width: Optional[float] = None
    mimic: bool = False
    teacher: Optional[str] = None
    init_from: Optional[str] = None
    init_group: Optional[str] = None
    speed_config: Optional[str] = None
    seeded: bool = True
    run_dir: Optional[str] = None
    selects_on_val: bool = False
    cfg_options: Tuple[Tuple[str, object], ...] = ()


_V = CONFIG_DIR
_M = CONFIG_DIR + 'mmdet/'
MODELS = (
    BenchmarkModel('teacher', _V + 'rpn_inception_vtest.py', 'Inception RPN (teacher)', 'teacher',
                   seeded=False),
    # ---- cross-scale block (headline): students at half the teacher's input
    BenchmarkModel('xs-mimic-1-2', _V + 'rpn_inception-1-2-deconv_mimic-inception_vtest-half.py',
                   '1/2-Inception RPN + deconv, half input, mimic', 'cross-scale', 0.5, True,
                   'teacher', init_group='xs-1-2',
                   speed_config=_V + 'rpn_inception-1-2-deconv_vtest-half.py'),
    BenchmarkModel('xs-scratch-1-2', _V + 'rpn_inception-1-2-deconv_vtest-half.py',
                   '1/2-Inception RPN + deconv, half input, scratch', 'cross-scale', 0.5,
                   init_group='xs-1-2'),
    BenchmarkModel('xs-nodeconv-1-2', _V + 'rpn_inception-1-2_vtest-half.py',
                   '1/2-Inception RPN, half input, scratch (no deconv)', 'cross-scale', 0.5,
                   init_group='xs-1-2'),
    BenchmarkModel('xs-mimic-1-4', _V + 'rpn_inception-1-4-deconv_mimic-inception_vtest-half.py',
                   '1/4-Inception RPN + deconv, half input, mimic', 'cross-scale', 0.25, True,
                   'teacher', init_group='xs-1-4',
                   speed_config=_V + 'rpn_inception-1-4-deconv_vtest-half.py'),
    BenchmarkModel('xs-scratch-1-4', _V + 'rpn_inception-1-4-deconv_vtest-half.py',
                   '1/4-Inception RPN + deconv, half input, scratch', 'cross-scale', 0.25,
                   init_group='xs-1-4'),
    BenchmarkModel('xs-nodeconv-1-4', _V + 'rpn_inception-1-4_vtest-half.py',
                   '1/4-Inception RPN, half input, scratch (no deconv)', 'cross-scale', 0.25,
                   init_group='xs-1-4'),
    # ---- same-input block (Tables 5/7)
    BenchmarkModel('mimic-1-2', _V + 'rpn_inception-1-2_mimic-inception_vtest.py',
                   '1/2-Inception RPN, full input, mimic', 'same-input', 0.5, True, 'teacher',
                   init_group='si-1-2', speed_config=_V + 'rpn_inception-1-2_vtest.py'),
    BenchmarkModel('scratch-1-2', _V + 'rpn_inception-1-2_vtest.py',
                   '1/2-Inception RPN, full input, scratch', 'same-input', 0.5,
                   init_group='si-1-2'),
    BenchmarkModel('mimic-1-4', _V + 'rpn_inception-1-4_mimic-inception_vtest.py',
                   '1/4-Inception RPN, full input, mimic', 'same-input', 0.25, True, 'teacher',
                   init_group='si-1-4', speed_config=_V + 'rpn_inception-1-4_vtest.py'),
    BenchmarkModel('scratch-1-4', _V + 'rpn_inception-1-4_vtest.py',
                   '1/4-Inception RPN, full input, scratch', 'same-input', 0.25,
                   init_group='si-1-4'),
    # ---- stage 2 (Tables 6/9), cross-scale 1/2 student
    BenchmarkModel('teacher-rfcn', _V + 'rfcn_inception_vtest.py',
                   'Inception R-FCN (two-stage teacher)', 'teacher', teacher='teacher',
                   init_from='teacher', seeded=False),
    BenchmarkModel('s2-mimic-1-2', _V + 'rfcn_inception-1-2-deconv_vtest-half.py',
                   '1/2-Inception R-FCN + deconv, half input, from the mimic RPN', 'stage2', 0.5,
                   init_from='xs-mimic-1-2'),
    BenchmarkModel('s2-scratch-1-2', _V + 'rfcn_inception-1-2-deconv_vtest-half.py',
                   '1/2-Inception R-FCN + deconv, half input, from the scratch RPN', 'stage2',
                   0.5, init_from='xs-scratch-1-2'),
    BenchmarkModel('s2-twostage-1-2',
                   _V + 'rfcn_inception-1-2-deconv_two-stage-mimic-inception_vtest-half.py',
                   '1/2-Inception R-FCN + deconv, half input, two-stage mimic', 'stage2', 0.5,
                   True, 'teacher-rfcn', init_from='xs-mimic-1-2',
                   speed_config=_V + 'rfcn_inception-1-2-deconv_vtest-half.py'),
    # ---- mmdet block: pyramid mimic on mmdet's Faster R-CNN FPN and RetinaNet, half input
    BenchmarkModel('mm-teacher', _M + 'faster-rcnn_r18-w32_fpn_vtest.py',
                   'Faster R-CNN R-18-FPN (w32, mmdet teacher)', 'mmdet', seeded=False,
                   selects_on_val=True),
    BenchmarkModel('mm-mimic-frcnn', _M + 'faster-rcnn_r18-w16_fpn_mimic-r18-w32_vtest-half.py',
                   'Faster R-CNN R-18-FPN (w16), half input, pyramid mimic', 'mmdet', 0.5, True,
                   'mm-teacher', init_group='mm-frcnn',
                   speed_config=_M + 'faster-rcnn_r18-w16_fpn_vtest-half.py'),
    BenchmarkModel('mm-scratch-frcnn', _M + 'faster-rcnn_r18-w16_fpn_vtest-half.py',
                   'Faster R-CNN R-18-FPN (w16), half input, scratch', 'mmdet', 0.5,
                   init_group='mm-frcnn'),
    BenchmarkModel('mm-mimic-retina',
                   _M + 'retinanet_r18-w16_fpn_mimic-frcnn-r18-w32_vtest-half.py',
                   'RetinaNet R-18-FPN (w16), half input, pyramid mimic', 'mmdet', 0.5, True,
                   'mm-teacher', init_group='mm-retina',
                   speed_config=_M + 'retinanet_r18-w16_fpn_vtest-half.py'),
    BenchmarkModel('mm-scratch-retina', _M + 'retinanet_r18-w16_fpn_vtest-half.py',
                   'RetinaNet R-18-FPN (w16), half input, scratch', 'mmdet', 0.5,
                   init_group='mm-retina'),
)
BY_NAME: Dict[str, BenchmarkModel] = {m.name: m for m in MODELS}
#: candidates for the RPN teacher (``--teacher`` of the run; the presets' ``teacher``), compared
#: on the validation split by ``tools/teacher_sweep.py``: the full-size frames, the frames
#: upscaled x2 (the paper's Sec. 3.5 teacher sees a ~1000 px short side) and the full-size frames
#: with scale jitter and photometric distortion, each trained and checkpoint-selected the same
#: way. Their validation MR-2: ``projects/vtest_mimic/results/teacher_sweep/teacher_sweep.md``
TEACHER_CANDIDATES = {
    'full': BY_NAME['teacher'],
    'x2': replace(BY_NAME['teacher'], config=_V + 'rpn_inception_vtest-x2.py',
                  label='Inception RPN (teacher), frames upscaled x2', run_dir='teacher-x2'),
    'jitter': replace(BY_NAME['teacher'], config=_V + 'rpn_inception_vtest-jitter.py',
                      label='Inception RPN (teacher), scale jitter + photometric distortion',
                      run_dir='teacher-jitter'),
}
#: the model pairs the report compares: (block, width) -> (mimic, scratch with the same network,
#: the other control); the interval table is built from these
COMPARISONS = (
    ('cross-scale', '1-2', 'xs-mimic-1-2', 'xs-scratch-1-2', 'xs-nodeconv-1-2'),
    ('cross-scale', '1-4', 'xs-mimic-1-4', 'xs-scratch-1-4', 'xs-nodeconv-1-4'),
    ('same-input', '1-2', 'mimic-1-2', 'scratch-1-2', None),
    ('same-input', '1-4', 'mimic-1-4', 'scratch-1-4', None),
    ('stage2', '1-2', 's2-mimic-1-2', 's2-scratch-1-2', 's2-twostage-1-2'),
    ('mmdet', 'frcnn', 'mm-mimic-frcnn', 'mm-scratch-frcnn', None),
    ('mmdet', 'retina', 'mm-mimic-retina', 'mm-scratch-retina', None),
)
#: the teacher of each block: the scratch-to-teacher gap and the precondition are measured
#: against it
BLOCK_TEACHER = {'cross-scale': 'teacher', 'same-input': 'teacher', 'stage2': 'teacher-rfcn',
                 'mmdet': 'mm-teacher'}
#: the blocks whose students read the Inception RPN teacher (the run trains it only for these)
INCEPTION_BLOCKS = ('cross-scale', 'same-input', 'stage2')

#: the validation / test parts of the vtest release (build_vtest: set00 train, set01 val, set02
#: test)
VAL_SET, TEST_SET = 1, 2
SPLIT_LISTS = {'val': 'vtest_val.txt', 'test': 'vtest_test.txt'}


def models_of(blocks: Sequence[str], teacher: str = 'full') -> List[BenchmarkModel]:
    """The models of ``blocks`` plus every model they depend on, in training order; the RPN
    teacher is the :data:`TEACHER_CANDIDATES` entry ``teacher``."""
    if teacher not in TEACHER_CANDIDATES:
        raise ValueError(f'teacher {teacher!r} is not one of {", ".join(TEACHER_CANDIDATES)}')
    chosen = [TEACHER_CANDIDATES[teacher] if m.name == 'teacher' else m
              for m in MODELS if m.block in blocks]
    if 'stage2' not in blocks:
        chosen = [m for m in chosen if m.name != 'teacher-rfcn']
    names = {m.name for m in chosen}
    for m in list(chosen):
        for dep in (m.teacher, m.init_from):
            if dep and dep not in names:
                raise ValueError(f'benchmark model {m.name} needs {dep}, which blocks {blocks} '
                                 'do not train')
    return chosen


def speed_config(model: BenchmarkModel) -> str:
    """The plain detector config timed for ``model``."""
    return model.speed_config or model.config


def speed_configs(models: Sequence[BenchmarkModel] = MODELS) -> List[str]:
    """The distinct configs to time, in the order of ``models``."""
    return list(dict.fromkeys(speed_config(m) for m in models))


def vtest_train_config(config: str,
                       data_dir: str,
                       seed: int,
                       work_dir: str,
                       iters: int,
                       workers: int = 1,
                       teacher_ckpt: Optional[str] = None,
                       val_interval: Optional[int] = None,
                       init_ckpt: Optional[str] = None,
                       stage1_ckpt: Optional[str] = None,
                       mimic_weight: Optional[float] = None,
                       teacher_cache: Optional[dict] = None,
                       cfg_options: Sequence[Tuple[str, object]] = ()):
    """The mmengine config of one benchmark run: ``config`` on ``data_dir`` for ``iters``
    iterations, its schedule rescaled (warm-up over the first 10 % (at most 100 iterations), one
    10x step at 75 %), checkpoints at the half and the end.

    Args:
        config: a config path, relative to the repository root.
        data_dir: the converted vtest release (the datasets' ``data_root``).
        seed: the run's random seed (data order, crops, flips, sampling).
        work_dir: the run's work dir; its last two path parts name the experiment.
        iters: training iterations.
        workers: dataloader workers.
        teacher_ckpt: the teacher checkpoint of a mimic student.
        val_interval: validate on the validation split every this many iterations and keep the
            best checkpoint by :data:`VAL_METRIC` (``rule='less'``); None: no validation during
            training.
        init_ckpt: initial weights (``load_from``): the paired initial weights of a student.
        stage1_ckpt: stage 2: the stage-1 checkpoint every ``MimicStudentInit`` reads.
        mimic_weight: the mimic loss weight (lambda1) of a mimic student.
        teacher_cache: a mimic student's ``teacher_cache`` settings.
        cfg_options: ``(key, value)`` pairs merged into the config last.

    Returns:
        :class:`mmengine.config.Config`.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    data_root = osp.abspath(data_dir) + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.train_cfg.max_iters = iters
    cfg.param_scheduler[0].end = min(100, max(1, iters // 10))
    cfg.param_scheduler[1].end = iters
    cfg.param_scheduler[1].milestones = [max(1, int(iters * 0.75))]
    cfg.default_hooks.checkpoint.interval = max(1, iters // 2)
    cfg.default_hooks.logger.interval = max(1, min(20, iters // 10))
    if val_interval:
        cfg.train_cfg.val_interval = val_interval
        cfg.val_dataloader.dataset.ann_file = SPLIT_LISTS['val']
        cfg.val_evaluator = copy.deepcopy(VAL_EVALUATOR)
        cfg.default_hooks.checkpoint.update(save_best=VAL_METRIC, rule='less')
    else:
        cfg.train_cfg.val_interval = iters + 1  # scored by the test stage, not mid-training
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{osp.basename(osp.dirname(work_dir))}_{osp.basename(work_dir)}'
    cfg.visualizer.name = f'vis_{cfg.experiment_name}'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is not None:
            cfg[loader].num_workers = workers
            cfg[loader].persistent_workers = workers > 0
    distiller = cfg.model.type == 'FeatureMimicDistiller'
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    if init_ckpt is not None:
        cfg.load_from = init_ckpt
    if stage1_ckpt is not None:
        _set_stage1(cfg.model.student if distiller else cfg.model, stage1_ckpt)
    if mimic_weight is not None:
        cfg.model.mimic_loss.loss_weight = mimic_weight
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    if teacher_cache is not None:
        cfg.model.teacher_cache = dict(teacher_cache,
                                       pipeline=cfg.train_dataloader.dataset.pipeline)
    return cfg


def _set_stage1(model_cfg, stage1_ckpt: str) -> int:
    """Point every ``MimicStudentInit`` of a detector config at ``stage1_ckpt``."""
    count = 0
    for part in model_cfg.values():
        init = part.get('init_cfg') if hasattr(part, 'get') else None
        if init is not None and init.get('type') == 'MimicStudentInit':
            init.checkpoint = stage1_ckpt
            count += 1
    if not count:
        raise ValueError('stage1_ckpt given but the config has no MimicStudentInit to set')
    return count


def student_init_state(model_cfg, seed: int) -> Dict[str, 'object']:
    """Initial weights of a student network for ``seed``: built and initialised (its
    ``init_cfg``) under ``torch.manual_seed(seed)``. Every model of an ``init_group`` starts
    from these for the parts it shares (the scratch student: all of it; the mimic student: its
    ``student.`` part; the control without the deconv: everything but the neck)."""
    import torch
    from mmdet.registry import MODELS as REGISTRY
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    model = REGISTRY.build(model_cfg)
    model.init_weights()
    return {k: v.clone() for k, v in model.state_dict().items()}
