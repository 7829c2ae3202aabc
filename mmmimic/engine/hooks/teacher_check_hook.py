"""Check, before the first iteration, that the mimic teacher is a trained detector.

A teacher that silently did not load (wrong file, a checkpoint of another run, an untrained
``iter_0``) trains the student towards noise, and nothing in the losses shows it. This hook scores
the teacher on the first ``num_images`` validation images with the config's val evaluator, scores
a randomly initialised network of the teacher's config on the same images (chance level on this
data, measured rather than assumed), logs both, and stops the run when the teacher is not better
than chance by ``min_gain``.
"""
import copy
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.logging import print_log
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


def _recall_preference(key: str) -> Tuple[int, int, int]:
    """Sort key of ``recall@N_iouT`` metrics: N >= 10 first, the fewest such N, lowest IoU."""
    num, iou = key.split('recall@')[1].split('_iou')
    return int(num) < 10, int(num) if int(num) >= 10 else -int(num), int(iou)


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


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Stop before training when the distiller's teacher scores at chance level.

    Args:
        num_images: validation images scored (the first ones of the val dataloader).
        min_gain: how much better than the random network the teacher must be, as a fraction of
            the metric's range (0.05: 5 MR/recall points, or 0.05 mAP); in the metric's own
            units when ``metric`` is given.
        metric: the metric key to compare; default: chosen by :func:`choose_metric`.
        rule: ``'less'`` or ``'greater'`` is better (needed with ``metric``).
        seed: seed of the random network's initialisation.
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

    def before_train(self, runner) -> None:
        distiller = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(distiller, 'teacher'):
            raise TypeError(f'TeacherCheckHook needs a distiller with a teacher, got '
                            f'{type(distiller).__name__}')
        if runner.cfg.get('val_dataloader') is None or runner.cfg.get('val_evaluator') is None:
            raise KeyError('TeacherCheckHook scores the teacher with the val evaluator: the config '
                           'has no val_dataloader/val_evaluator (add them, or drop the hook / '
                           'pass --no-teacher-check)')
        dataloader = runner.build_dataloader(runner.cfg.val_dataloader, seed=self.seed)
        ckpt = runner.cfg.model.get('teacher_ckpt', '<teacher_ckpt>')
        teacher_score = self._score(runner, distiller, distiller.teacher, dataloader)
        random_net = self._random_network(teacher_config_of(runner.cfg.model),
                                          distiller.teacher)
        random_score = self._score(runner, distiller, random_net, dataloader)
        key, rule, scale = (self.metric, self.rule, 1.) if self.metric else \
            choose_metric(teacher_score)
        t, r = float(teacher_score[key]), float(random_score[key])
        gain = (r - t) if rule == 'less' else (t - r)
        needed = self.min_gain * scale
        self.result = dict(metric=key, teacher=t, random=r, gain=gain, needed=needed)
        summary = (f'teacher {ckpt}: {key} = {t:.3f} on {self.num_images} validation images; '
                   f'a randomly initialised {type(distiller.teacher).__name__} of the same '
                   f'config: {r:.3f}')
        if gain < needed:
            raise RuntimeError(
                f'this teacher looks untrained: {summary}. A trained teacher must be better by '
                f'at least {needed:g}. Check teacher_ckpt ({ckpt}): is it the trained checkpoint '
                'of this teacher config?')
        print_log(f'TeacherCheckHook: {summary} (better by {gain:.3f} >= {needed:g})',
                  logger='current')

    def _random_network(self, teacher_cfg: ConfigDict,
                        teacher: torch.nn.Module) -> torch.nn.Module:
        """The teacher's config, randomly initialised (seeded; the global RNG is restored)."""
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            net = MODELS.build(teacher_cfg)
            net.init_weights()
        finally:
            torch.random.set_rng_state(state)
        return net.to(next(teacher.parameters()).device)

    @torch.no_grad()
    def _score(self, runner, distiller, net, dataloader) -> Dict[str, float]:
        evaluator = runner.build_evaluator(copy.deepcopy(runner.cfg.val_evaluator))
        evaluator.dataset_meta = dataloader.dataset.metainfo
        was_training = net.training
        net.eval()
        seen = 0
        for batch in dataloader:
            data = distiller.data_preprocessor(batch, False)
            outputs = net.predict(data['inputs'], data['data_samples'])
            evaluator.process(data_samples=outputs, data_batch=batch)
            seen += len(outputs)
            if seen >= self.num_images:
                break
        net.train(was_training)
        return evaluator.evaluate(seen)


def teacher_config_of(model_cfg: ConfigDict) -> ConfigDict:
    """The teacher's model config from a distiller config (a path or a dict)."""
    teacher = model_cfg['teacher']
    return copy.deepcopy(Config.fromfile(teacher).model if isinstance(teacher, str) else teacher)
