"""Check, before the first iteration, that the mimic teacher is a trained detector.

A teacher that silently did not load (wrong file, a checkpoint of another run, an untrained
``iter_0``) trains the student towards noise, and nothing in the losses shows it. This hook scores
the teacher on the first ``num_images`` validation images with the config's val evaluator, scores
a randomly initialised network of the teacher's config on the same images (chance level on this
data, measured rather than assumed), logs both, and stops the run when the teacher is not better
than chance by ``min_gain``.

* The chance baseline is built from a copy of the teacher's config with every ``init_cfg`` and
  ``pretrained`` key removed: no pretrained (e.g. ImageNet) weights, nothing downloaded.
* Under multi-process training every rank scores its share (mmengine's ``DefaultSampler`` gives
  rank ``r`` the samples ``r, r + W, ...``) and the metric gathers them: the same images, and the
  same scores, as in one process.
* Every random stream (torch CPU and CUDA, numpy, Python ``random``) is left as it was found.
* The verdict is saved in every checkpoint (``checkpoint['teacher_check']``, plain str/int/float
  values) and reused on resume when the teacher checkpoint's bytes and the check's settings are
  the same: the check runs once per work dir.
"""
import contextlib
import copy
import hashlib
import io
import logging
import math
import os.path as osp
import random
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS, MODELS

# (key fragment, rule, scale of the metric): the first match in this order is checked.
_METRIC_PREFERENCE = (
    ('Reasonable_MR-2', 'less', 100.),
    ('_MR-2', 'less', 100.),
    ('bbox_mAP', 'greater', 1.),
    ('mAP', 'greater', 1.),
    ('recall@', 'greater', 100.),
    ('AR@', 'greater', 1.),
)

CHECKPOINT_KEY = 'teacher_check'
# The verdict as it is stored in a checkpoint: plain values only (torch's weights-only loader).
_VERDICT_TYPES = dict(metric=str, teacher=float, random=float, gain=float, needed=float,
                      num_images=int, teacher_ckpt=str, teacher_sha256=str, settings=str)
_TEACHER_LABEL = '[teacher check: teacher]'
_CHANCE_LABEL = '[teacher check: chance baseline]'
_RECALL_METRIC_HINT = ("val_evaluator = dict(type='ProposalRecallMetric', proposal_nums=(10, 100, "
                       "300), iou_thrs=(0.5, 0.7))")


def _recall_preference(key: str) -> Tuple[int, int, int]:
    """Sort key of ``recall@N_iouT`` metrics: N >= 10 first, the fewest such N, lowest IoU."""
    num, iou = key.split('recall@')[1].split('_iou')
    return int(num) < 10, int(num) if int(num) >= 10 else -int(num), int(iou)


def metric_value(metrics: Dict[str, float], key: str, rule: str,
                 scale: Optional[float]) -> float:
    """``metrics[key]``; for a network without a single detection on the scored images, for
    which mmdet's ``CocoMetric`` returns no metric at all, the metric's worst value: 0 for a
    ``'greater'`` metric, 100% (``scale``, else infinity) for a ``'less'`` one.

    Raises:
        KeyError: the scores lack ``key`` although they hold other metrics (names them).
    """
    if key in metrics:
        return float(metrics[key])
    if not metrics:
        return 0. if rule == 'greater' else (float(scale) if scale else math.inf)
    raise KeyError(f'TeacherCheckHook: the val metrics {sorted(metrics)} have no {key!r}')


def choose_metric(metrics: Dict[str, float]) -> Tuple[str, str, float]:
    """The metric the check compares: ``(key, rule, scale)``.

    Caltech MR-2 (Reasonable first), else mAP, else proposal recall at the fewest proposals
    >= 10 and the lowest IoU listed: with hundreds of proposals even a random RPN covers a small
    image, and at a high IoU an RPN trained briefly scores zero like a random one.
    """
    for fragment, rule, scale in _METRIC_PREFERENCE:
        keys = [k for k in metrics if fragment in k]
        if not keys:
            continue
        if fragment == 'recall@':
            keys.sort(key=_recall_preference)
        return keys[0], rule, scale
    raise KeyError(f'TeacherCheckHook: none of the val metrics {sorted(metrics)} is one it knows '
                   '(MR-2, mAP, recall@N, AR@N); set metric= and rule= explicitly')


def strip_init_cfg(cfg: Any) -> Any:
    """A copy of a model config with every ``init_cfg`` and ``pretrained`` key removed, at any
    depth (backbone, neck, heads, the model itself): what it builds is randomly initialised by
    each module's own default scheme, and loads or downloads no weights."""
    if isinstance(cfg, dict):
        out = {k: strip_init_cfg(v) for k, v in cfg.items()
               if k not in ('init_cfg', 'pretrained')}
        return ConfigDict(out) if isinstance(cfg, ConfigDict) else type(cfg)(out)
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(strip_init_cfg(v) for v in cfg)
    return copy.deepcopy(cfg)


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore torch's (CPU and, when present, CUDA), numpy's and Python's global random states
    on exit, whatever ran inside (dataloaders draw seeds, samplers sync a numpy seed, ...)."""
    torch_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


class _LabelLines(logging.Filter):
    """Prefix every line of every record of a logger with a label."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        lines = record.getMessage().split('\n')
        record.msg = '\n'.join(f'{self.label} {line}' if line.strip() else line for line in lines)
        record.args = ()
        return True


@contextlib.contextmanager
def _labelled_output(label: str) -> Iterator[None]:
    """Label what the metric logs (its tables) and what it prints (pycocotools' progress)."""
    logger = MMLogger.get_current_instance()
    label_filter = _LabelLines(label)
    logger.addFilter(label_filter)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        if printed.getvalue().strip():
            logger.info(printed.getvalue().rstrip('\n'))
        logger.removeFilter(label_filter)


def _uses_proposal_fast(evaluator_cfg: Any) -> bool:
    cfgs = evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]
    for cfg in cfgs:
        metric = cfg.get('metric') if isinstance(cfg, dict) else None
        metrics = [metric] if isinstance(metric, str) else list(metric or [])
        if 'proposal_fast' in metrics:
            return True
    return False


def _restrict_coco_img_ids(metric: Any) -> None:
    """Make an mmdet ``CocoMetric`` judge only the images it was given.

    With an ``ann_file`` it scores the predictions against every image of that file, so the
    teacher's predictions on 20 of 5000 validation images would score a mAP near 0. The image ids
    of the (gathered, truncated) results are set as ``img_ids`` just before it computes.
    """
    compute = metric.compute_metrics

    def compute_on_scored_images(results: list) -> Dict[str, float]:
        ids = [r[0].get('img_id') for r in results
               if isinstance(r, tuple) and r and isinstance(r[0], dict)]
        if ids and len(ids) == len(results) and None not in ids:
            metric.img_ids = list(dict.fromkeys(ids))
        return compute(results)

    metric.compute_metrics = compute_on_scored_images


def _is_verdict(value: Any) -> bool:
    """A dict of exactly the verdict's keys, each of its plain type (finite numbers)."""
    if not (isinstance(value, dict) and set(value) == set(_VERDICT_TYPES)):
        return False
    for key, kind in _VERDICT_TYPES.items():
        v = value[key]
        if isinstance(v, bool):
            return False
        if kind is float and not (isinstance(v, (int, float)) and math.isfinite(v)):
            return False
        if kind is not float and not isinstance(v, kind):
            return False
    return True


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Stop before training when the distiller's teacher scores at chance level.

    Args:
        num_images: validation images scored (the first ones of the val dataloader; all of them
            when the val set is smaller).
        min_gain: how much better than the random network the teacher must be, as a fraction of
            the metric's range (0.05: 5 MR/recall points, or 0.05 mAP); in the metric's own
            units when ``metric`` is given.
        metric: the metric key to compare; default: chosen by :func:`choose_metric`.
        rule: ``'less'`` or ``'greater'`` is better (needed with ``metric``).
        seed: seed of the random network's initialisation and of the val dataloader.

    After the check, :attr:`result` holds the verdict (``metric``, ``teacher``, ``random``,
    ``gain``, ``needed``, ``num_images``, ...) and :attr:`reused` says whether it came from the
    resumed checkpoint.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 num_images: int = 20,
                 min_gain: float = 0.05,
                 metric: Optional[str] = None,
                 rule: Optional[str] = None,
                 seed: int = 0) -> None:
        if num_images < 1:
            raise ValueError(f'TeacherCheckHook: num_images must be >= 1, got {num_images}')
        if metric is not None and rule not in ('less', 'greater'):
            raise ValueError('TeacherCheckHook: with metric= give rule="less" or "greater"')
        self.num_images = num_images
        self.min_gain = min_gain
        self.metric = metric
        self.rule = rule
        self.seed = seed
        self.result: Optional[dict] = None
        self.reused = False
        self._loaded: Any = None

    @property
    def settings(self) -> str:
        """What the scores depend on besides the teacher (``min_gain`` only judges them)."""
        return f'num_images={self.num_images} metric={self.metric} rule={self.rule} ' \
               f'seed={self.seed}'

    # -- checkpoints: the verdict travels with the run -------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.result is not None:
            checkpoint[CHECKPOINT_KEY] = {k: _VERDICT_TYPES[k](self.result[k])
                                          for k in _VERDICT_TYPES}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def _reusable(self, sha256: str) -> Optional[dict]:
        """The verdict of the loaded checkpoint when it was reached for the teacher file of
        SHA-256 ``sha256`` with these settings; None (and a log line saying why) otherwise."""
        loaded, self._loaded = self._loaded, None
        if loaded is None:
            return None
        why = None
        if not _is_verdict(loaded):
            why = 'it is malformed'
        elif not sha256 or loaded['teacher_sha256'] != sha256:
            why = f'it was reached for another teacher checkpoint ({loaded["teacher_ckpt"]})'
        elif loaded['settings'] != self.settings:
            why = f'it was reached with other settings ({loaded["settings"]})'
        if why is not None:
            print_log(f'TeacherCheckHook: not reusing the verdict in the loaded checkpoint: {why}; '
                      'checking again', logger='current', level=logging.WARNING)
            return None
        return {k: _VERDICT_TYPES[k](loaded[k]) for k in _VERDICT_TYPES}

    # -- the check --------------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        distiller = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(distiller, 'teacher'):
            raise TypeError(f'TeacherCheckHook needs a distiller with a teacher, got '
                            f'{type(distiller).__name__}')
        if runner.cfg.get('val_dataloader') is None or runner.cfg.get('val_evaluator') is None:
            raise KeyError('TeacherCheckHook scores the teacher with the val evaluator: the config '
                           'has no val_dataloader/val_evaluator (add them, or drop the hook / '
                           'pass --no-teacher-check)')
        ckpt = getattr(distiller, 'teacher_ckpt', None) or \
            runner.cfg.model.get('teacher_ckpt', '<teacher_ckpt>')
        sha256 = file_sha256(ckpt) if isinstance(ckpt, str) and osp.isfile(ckpt) else ''
        restored = self._reusable(sha256)
        self.reused = restored is not None
        if restored is not None:
            self.result = restored
        else:
            with preserved_rng_state():
                self.result = self._check(runner, distiller, str(ckpt), sha256)
        self._judge(distiller, str(ckpt))

    def _check(self, runner, distiller, ckpt: str, sha256: str) -> dict:
        dataloader = runner.build_dataloader(runner.cfg.val_dataloader, seed=self.seed)
        total = min(self.num_images, len(dataloader.dataset))
        print_log(f'TeacherCheckHook: scoring the teacher ({ckpt}) and a chance baseline (a '
                  f'randomly initialised {type(distiller.teacher).__name__} of its config, no '
                  f'pretrained weights) on {total} validation images'
                  + (f' ({get_world_size()} processes)' if get_world_size() > 1 else ''),
                  logger='current')
        teacher_score = self._score(runner, distiller, distiller.teacher, dataloader, total,
                                    _TEACHER_LABEL)
        random_net = self._random_network(teacher_config_of(runner.cfg.model), distiller.teacher)
        random_score = self._score(runner, distiller, random_net, dataloader, total,
                                   _CHANCE_LABEL)
        if not teacher_score and not random_score:
            raise RuntimeError(
                f'this teacher looks untrained: neither it ({ckpt}) nor a randomly initialised '
                f'network of its config detects anything on {total} validation images (the val '
                'evaluator returned no metric). Check teacher_ckpt: is it the trained checkpoint '
                'of this teacher config?')
        key, rule, scale = (self.metric, self.rule, None) if self.metric else \
            choose_metric(teacher_score or random_score)
        t, r = (metric_value(score, key, rule, scale) for score in (teacher_score, random_score))
        return dict(metric=key, teacher=t, random=r, gain=(r - t) if rule == 'less' else (t - r),
                    needed=0., num_images=total, teacher_ckpt=ckpt, teacher_sha256=sha256,
                    settings=self.settings)

    def _judge(self, distiller, ckpt: str) -> None:
        """Log the verdict, or stop the run; ``needed`` follows this run's ``min_gain``."""
        res = self.result
        scale = 1. if self.metric else next(
            (s for fragment, _, s in _METRIC_PREFERENCE if fragment in res['metric']), 1.)
        res['needed'] = float(self.min_gain * scale)
        name = type(distiller.teacher).__name__
        summary = (f'teacher {ckpt}: {res["metric"]} = {res["teacher"]:.3f} on '
                   f'{res["num_images"]} validation images; a randomly initialised {name} of the '
                   f'same config (no pretrained weights, the chance baseline): '
                   f'{res["random"]:.3f}')
        if res['gain'] < res['needed']:
            raise RuntimeError(
                f'this teacher looks untrained: {summary}. A trained teacher must be better by '
                f'at least {res["needed"]:g}. Check teacher_ckpt ({ckpt}): is it the trained '
                'checkpoint of this teacher config?')
        reused = ' (verdict reused from the loaded checkpoint, not scored again)' \
            if self.reused else ''
        print_log(f'TeacherCheckHook: {summary} (better by {res["gain"]:.3f} >= '
                  f'{res["needed"]:g}){reused}', logger='current')

    def _random_network(self, teacher_cfg: ConfigDict,
                        teacher: torch.nn.Module) -> torch.nn.Module:
        """The teacher's config without any pretrained init, randomly initialised (seeded)."""
        torch.manual_seed(self.seed)
        net = MODELS.build(strip_init_cfg(teacher_cfg))
        net.init_weights()
        return net.to(next(teacher.parameters()).device)

    @torch.no_grad()
    def _score(self, runner, distiller, net, dataloader, total: int,
               label: str) -> Dict[str, float]:
        """``net``'s val metrics on the first ``total`` images of ``dataloader``, all ranks
        together: each rank scores at least ``ceil(total / world_size)`` of its samples, the
        metric gathers them in sampler order and keeps the first ``total``."""
        evaluator = runner.build_evaluator(copy.deepcopy(runner.cfg.val_evaluator))
        evaluator.dataset_meta = dataloader.dataset.metainfo
        for metric in evaluator.metrics:
            if hasattr(metric, 'img_ids') and hasattr(metric, '_coco_api'):
                _restrict_coco_img_ids(metric)
        per_rank = math.ceil(total / get_world_size())
        was_training = net.training
        net.eval()
        seen = 0
        try:
            for batch in dataloader:
                if seen >= per_rank:
                    break
                data = distiller.data_preprocessor(batch, False)
                outputs = net.predict(data['inputs'], data['data_samples'])
                evaluator.process(data_samples=outputs, data_batch=batch)
                seen += len(outputs)
        finally:
            net.train(was_training)
        try:
            with _labelled_output(label):
                return evaluator.evaluate(total)
        except Exception as err:
            if not _uses_proposal_fast(runner.cfg.val_evaluator):
                raise
            raise RuntimeError(
                f"TeacherCheckHook: the val evaluator (CocoMetric with metric='proposal_fast') "
                f'failed: {type(err).__name__}: {err}. mmdet 3.x\'s proposal_fast breaks under '
                'numpy >= 1.24 (a ragged np.array in mmdet.evaluation.functional.eval_recalls). '
                f'For RPN-only models use this project\'s metric: {_RECALL_METRIC_HINT} (and the '
                'same test_evaluator)') from err


def teacher_config_of(model_cfg: ConfigDict) -> ConfigDict:
    """The teacher's model config from a distiller config (a path, a package-scoped path such
    as ``'mmdet::...'``, or a dict), read as the distiller reads it."""
    from mmmimic.models.distillers.teacher import teacher_model_cfg
    return teacher_model_cfg(model_cfg['teacher'])
