"""What a mimic step gets from the teacher: ``(batch_inputs, data_samples) -> teacher maps``.

:class:`~.FeatureMimicDistiller` owns one :class:`TeacherFeatures`: :class:`LiveTeacherFeatures`
runs the frozen teacher; :class:`CachedTeacherFeatures` serves the mimicked map (or, for pyramid
mimic, every mimicked teacher level) from a
:class:`~mmmimic.teacher_cache.TeacherFeatureCache` (docs/advanced_guides/distiller.md,
"Teacher-feature cache").
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmdet.structures import SampleList
from mmdet.utils import OptConfigType
from mmmimic.teacher_cache import (CacheError, TeacherFeatureCache, TeacherMapGeometry,
                                   cache_identity, cached_levels, make_sample_computer,
                                   plan_cache_pipeline, sample_cache_key)
from mmmimic.teacher_cache.levels import Levels, coarsest_stride, level_name, level_strides

#: the keys of a distiller's ``teacher_cache`` dict
CACHE_KEYS = ('dir', 'pipeline', 'dtype', 'max_gb', 'verify', 'missing')


class TeacherFeatures:
    """The teacher's feature maps of a training batch, indexed as ``extract_feat``'s."""

    def __call__(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                 training: bool = True) -> Tuple[Optional[Tensor], ...]:
        """Args:
            batch_inputs: ``(B, 3, H, W)`` the teacher's (full-size) batch.
            batch_data_samples: its data samples.
            training: whether the distiller is in training mode.
        """
        raise NotImplementedError


class LiveTeacherFeatures(TeacherFeatures):
    """The frozen teacher's ``extract_feat``, without autograd."""

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher = teacher

    @torch.no_grad()
    def __call__(self, batch_inputs: Tensor, batch_data_samples: SampleList = None,
                 training: bool = True) -> Tuple[Tensor, ...]:
        return self.teacher.extract_feat(batch_inputs)


def cache_settings(cfg: dict) -> dict:
    """A distiller's ``teacher_cache`` dict, its keys checked.

    Raises:
        ValueError: an unknown key (``type``: the cache is not a registry entry) or a missing
            ``dir`` / ``pipeline``.
    """
    cfg = dict(cfg)
    if 'type' in cfg:
        raise ValueError(f'teacher_cache.type={cfg["type"]!r}: the teacher cache is not built '
                         f'from a registry; remove the key "type" (valid keys: '
                         f'{sorted(CACHE_KEYS)})')
    unknown = sorted(set(cfg) - set(CACHE_KEYS))
    if unknown:
        raise ValueError(f'unknown teacher_cache key(s) {unknown}; valid: {sorted(CACHE_KEYS)}')
    for key in ('dir', 'pipeline'):
        if not cfg.get(key):
            raise ValueError(f'teacher_cache.{key} is required (dir: the LMDB folder; '
                             'pipeline: the training pipeline, e.g. {{_base_.train_pipeline}})')
    return cfg


class CachedTeacherFeatures(TeacherFeatures):
    """The mimicked map(s) from the cache (read-only), other maps ``None``: the map
    ``feature``, or with ``levels`` (pyramid mimic) every cached teacher level at its index.

    While training, the entries of the first ``verify`` distinct samples served are recomputed by
    the live teacher from the samples themselves (:meth:`verify_batch`). A batch with a missing
    entry (``missing='live'``) runs the live teacher, logged.

    Args:
        cache: the open store (its ``entry_shape`` is set to the teacher's geometry here).
        plan: :func:`~mmmimic.teacher_cache.plan_cache_pipeline` of the training pipeline.
        live: the live teacher (fallback and ``verify``).
        feature: the mimicked map's index (one map).
        stride: the teacher map's stride (one map).
        data_preprocessor: the distiller's data preprocessor (module).
        levels: pyramid mimic: ``[(teacher level index, stride), ...]`` of the cached levels
            (:func:`~mmmimic.teacher_cache.cached_levels`); ``None``: the one map ``feature``.
    """

    def __init__(self, cache: TeacherFeatureCache, plan: dict, live: LiveTeacherFeatures,
                 feature: int, stride: int, data_preprocessor: nn.Module,
                 levels: Levels = None) -> None:
        self.cache = cache
        self.plan = plan
        self.live = live
        self.feature = feature
        self.stride = int(stride)
        self.levels = levels
        self.data_preprocessor = data_preprocessor
        self.geometry = TeacherMapGeometry(
            live.teacher, feature, getattr(data_preprocessor, 'pad_size_divisor', 1), levels)
        cache.entry_shape = self.geometry.entry_shape
        #: the keys ``verify`` recomputed so far; ``verified`` once ``cache.verify_k`` matched
        self.checked: List[str] = []
        self.verified = False
        self._compute = None

    @classmethod
    def open(cls, cfg: dict, teacher_cfg: dict, teacher_ckpt: str, live: LiveTeacherFeatures,
             feature: int, stride: int, data_preprocessor: nn.Module,
             data_preprocessor_cfg: OptConfigType,
             pairs: Optional[Sequence[dict]] = None) -> 'CachedTeacherFeatures':
        """Open the store a distiller's ``teacher_cache`` dict (:func:`cache_settings`) names,
        read-only, for the identity of this teacher, preprocessing, pipeline and cached
        level(s): ``pairs`` (the distiller's ``mimic_pairs``) give every teacher level a pair
        mimics (:func:`~mmmimic.teacher_cache.cached_levels`); ``None``: the map ``feature``.

        Raises:
            ValueError: a transform the cache cannot represent.
            CacheError: the cache is missing, stale (a store of other levels names both level
                sets), truncated, corrupt or (``missing='error'``) incomplete.
        """
        levels = cached_levels(pairs)
        plan = plan_cache_pipeline(cfg['pipeline'], coarsest_stride(levels, int(stride)))
        dtype = cfg.get('dtype', 'float16')
        identity = cache_identity(teacher_cfg, teacher_ckpt, feature, data_preprocessor_cfg,
                                  plan['cached'], dtype, levels)
        cache = TeacherFeatureCache(
            cfg['dir'], identity=identity, dtype=dtype, max_gb=cfg.get('max_gb', 50.0),
            verify=cfg.get('verify', 0), missing=cfg.get('missing', 'error'), readonly=True)
        features = cls(cache, plan, live, feature, stride, data_preprocessor, levels)
        if not cache.complete and cache.missing == 'error':
            raise CacheError(f'teacher cache {cache.file} is incomplete (its fill was '
                             "interrupted); rerun tools/cache_teacher_features.py to resume, or "
                             "set missing='live'")
        return features

    def verify_batch(self, batch_data_samples: SampleList) -> List[str]:
        """``verify=k``: recompute the entries of the first ``k`` distinct training samples the
        cache serves with the live teacher, from the samples themselves
        (:func:`~mmmimic.teacher_cache.make_sample_computer`), and compare
        (:meth:`~mmmimic.teacher_cache.TeacherFeatureCache.check_entry`). Sets ``verified``
        once ``k`` entries matched.

        Returns:
            the keys checked in this batch.

        Raises:
            CacheError: an entry that does not match the live teacher (names file, key,
                numbers).
        """
        cache = self.cache
        if self._compute is None:
            self._compute = make_sample_computer(self.live.teacher, self.data_preprocessor,
                                                 self.plan, self.feature, self.levels)
        now = []
        for sample in batch_data_samples:
            if len(self.checked) >= cache.verify_k:
                break
            key = sample_cache_key(sample.metainfo)[0]
            if key in self.checked or cache.get(key) is None:  # missing: serve() decides
                continue
            cache.check_entry(key, self._compute(sample.metainfo)[1])
            self.checked.append(key)
            now.append(key)
        if len(self.checked) >= cache.verify_k:
            self.verified = True
            print_log(f'teacher cache: {len(self.checked)} entries served to training match '
                      'the live teacher recomputed from their samples', logger='current')
        return now

    def __call__(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                 training: bool = True) -> Tuple[Optional[Tensor], ...]:
        """Only position ``feature`` (or each cached level's index) is a map (the ones
        mimicked); the others are ``None``."""
        if training and not self.verified:
            self.verify_batch(batch_data_samples)
        batch_shape = tuple(batch_inputs.shape[-2:])
        if self.levels is not None:
            served, missing = self.cache.serve_levels(
                batch_data_samples, batch_shape, level_strides(self.levels, self.stride),
                batch_inputs.device, batch_inputs.dtype, self.geometry.level_shapes(batch_shape))
            if missing:
                return self.live(batch_inputs, batch_data_samples, training)
            feats = [None] * (max(j for j, _ in self.levels) + 1)
            for j, _ in self.levels:
                feats[j] = served[level_name(j)]
            return tuple(feats)
        feat, missing = self.cache.serve(batch_data_samples, batch_shape, self.stride,
                                         batch_inputs.device, batch_inputs.dtype,
                                         self.geometry.map_shape(batch_shape))
        if missing:
            return self.live(batch_inputs, batch_data_samples, training)
        index = self.feature
        feats = [None] * (index + 1 if index >= 0 else -index)
        feats[index] = feat
        return tuple(feats)
