"""The offline fill job of the teacher cache (``tools/cache_teacher_features.py``) and the live
recomputation of an entry from its training sample (``verify``)."""
import copy
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from .codec import DTYPES
from .geometry import TeacherMapGeometry
from .identity import CacheError, cache_identity, cache_key, plain, sample_cache_key
from .levels import Levels, cached_levels, coarsest_stride, level_name
from .pipeline import plan_cache_pipeline, recipe_pipeline
from .store import MIN_FREE, TeacherFeatureCache, free_bytes


@torch.no_grad()
def teacher_map_of(teacher, data_preprocessor, packed: dict, feature: int) -> Tensor:
    """The teacher's map ``feature`` of one packed sample, normalised and padded as in training
    (a batch of one). Returns ``(C, h, w)`` float32 on the teacher's device."""
    data = data_preprocessor(dict(inputs=[packed['inputs']],
                                  data_samples=[packed['data_samples']]), False)
    return teacher.extract_feat(data['inputs'])[feature][0].float()


@torch.no_grad()
def teacher_maps_of(teacher, data_preprocessor, packed: dict, feature: int,
                    levels: Levels = None) -> Union[Tensor, Dict[str, Tensor]]:
    """What an entry holds for one packed sample: :func:`teacher_map_of`, or with ``levels``
    (pyramid mimic) ``{'level{j}': (C, h, w) float32 map}`` of every cached level, from one
    forward."""
    if levels is None:
        return teacher_map_of(teacher, data_preprocessor, packed, feature)
    data = data_preprocessor(dict(inputs=[packed['inputs']],
                                  data_samples=[packed['data_samples']]), False)
    feats = teacher.extract_feat(data['inputs'])
    return {level_name(j): feats[j][0].float() for j, _ in levels}


def make_sample_computer(teacher, data_preprocessor, plan: dict, feature: int,
                         levels: Levels = None
                         ) -> Callable[[dict], Tuple[str, Union[Tensor, Dict[str, Tensor]]]]:
    """``training sample meta -> (key, live teacher map(s))`` for ``verify`` (with ``levels``:
    ``{tensor name: map}`` of every cached level, :func:`teacher_maps_of`).

    Recomputes the entry a training sample is served from the sample itself: the image its
    ``img_path`` names (the training dataset's own sample), loaded with the configured loading
    step, resized by the resize of ``plan`` (the training config's pipeline) that gives the
    sample's pre-crop shape, flipped as the sample was, normalised and padded by the
    distiller's data preprocessor, and run through the teacher. Nothing stored in the cache is
    read (an entry holds no recipe).

    Raises:
        CacheError: no resize of the plan gives the sample's shape (names the key).
    """
    from mmcv.transforms import Compose
    pipelines: Dict[Tuple[int, bool], Callable] = {}

    def compute(metainfo: dict) -> Tuple[str, Tensor]:
        key, _ = sample_cache_key(metainfo)
        flip = bool(metainfo.get('flip', False))
        target = tuple(int(v) for v in metainfo.get('precrop_shape', metainfo['img_shape'])[:2])
        shapes = []
        for i, resize in enumerate(plan['resizes']):
            if (i, flip) not in pipelines:
                pipelines[(i, flip)] = Compose(recipe_pipeline(plan['loading'], resize, flip,
                                                               with_annotations=False))
            packed = pipelines[(i, flip)](dict(img_path=metainfo['img_path'], img_id=0))
            shapes.append(tuple(packed['data_samples'].img_shape[:2]))
            if shapes[-1] == target:
                return key, teacher_maps_of(teacher, data_preprocessor, packed, feature,
                                            levels)
        raise CacheError(f'teacher cache verify: no resize of the training pipeline gives the '
                         f'shape {target} of {key!r} (they give {shapes})')

    return compute


def fill_teacher_cache(cache: TeacherFeatureCache, build_dataset: Callable[[List[dict]], object],
                       plan: dict, teacher, data_preprocessor, feature: int,
                       progress: bool = True, stop_after: Optional[int] = None,
                       log: Callable[[str], None] = print, levels: Levels = None) -> dict:
    """Write every (image, resize, flip) entry the training pipeline can draw; resumable.

    The size of the whole cache is estimated from the first entry (entries of equal image
    sizes have equal sizes): the number of entries times the first entry's map bytes, summed
    over every cached level (element counts x the dtype's size; the safetensors header, at
    most :data:`~.codec.MAX_HEADER` bytes an entry, and LMDB's pages are left to the 5%
    margin), and checked against ``cache.max_gb`` before anything is written.
    Entries already written (a previous, interrupted fill) are skipped without loading their
    image. Each entry and its fill marker are committed in one LMDB transaction.

    Args:
        cache: a writable :class:`TeacherFeatureCache`.
        build_dataset: ``pipeline -> dataset`` (the training dataset with that pipeline).
        plan: :func:`plan_cache_pipeline` of the training pipeline.
        teacher: the frozen teacher (eval mode).
        data_preprocessor: the distiller's data preprocessor.
        feature: the cached map's index (a single-map store).
        progress: show a progress bar (:func:`mmmimic.utils.progress`).
        stop_after: stop after writing this many entries (tests: an interrupted fill).
        log: where messages go.
        levels: pyramid mimic: the cached levels (:func:`~.levels.cached_levels`).

    Returns:
        ``dict(entries, written, skipped, bytes_written, estimate_gb, estimate_bytes)``
        (``bytes_written``: the entries' values, headers included).

    Raises:
        CacheError: the estimate exceeds ``max_gb`` (nothing written).
    """
    variants = [(f'r{i}{"f" if flip else ""}', resize, flip)
                for i, resize in enumerate(plan['resizes'])
                for flip in ((False, True) if plan['flip'] else (False, ))]
    datasets = [(name, resize, flip, build_dataset(recipe_pipeline(plan['loading'], resize, flip)))
                for name, resize, flip in variants]
    total = sum(len(ds) for *_, ds in datasets)
    first = datasets[0][3][0]
    first_maps = teacher_maps_of(teacher, data_preprocessor, first, feature, levels)
    if levels is None:
        shapes = f'{tuple(first_maps.shape)}'
        numel = first_maps.numel()
    else:
        shapes = 'levels ' + ', '.join(f'{j}@{s} {tuple(first_maps[level_name(j)].shape)}'
                                       for j, s in levels)
        numel = sum(m.numel() for m in first_maps.values())
    entry_bytes = numel * DTYPES[cache.dtype].itemsize
    estimate_gb = total * entry_bytes / 2**30
    log(f'teacher cache {cache.dir}: {total} entries ({len(datasets)} augmentation state(s) x '
        f'{len(datasets[0][3])} images), {shapes} {cache.dtype} each = '
        f'{entry_bytes / 2**20:.2f} MiB; estimate {estimate_gb:.3f} GiB (max_gb {cache.max_gb})')
    if estimate_gb > cache.max_gb * 0.95:  # LMDB pages and keys need some room
        raise CacheError(f'teacher cache estimate {estimate_gb:.3f} GiB exceeds max_gb='
                         f'{cache.max_gb} (with 5% margin); raise max_gb or cache fewer images')
    # what is still to write (a resumed fill has part of it in data.mdb already) must fit
    need = int(total * entry_bytes * 1.05) + MIN_FREE - osp.getsize(cache.file)
    free = free_bytes(cache.dir)
    if free is not None and need > free:
        raise CacheError(f'disk full: the teacher cache {cache.file} needs about '
                         f'{need / 2**30:.3f} GiB more, {free / 2**30:.3f} GiB free on '
                         f'{cache.dir}; free space or choose another teacher_cache.dir')
    bar = None
    if progress:
        from mmmimic.utils.progress_bar import progress as progress_bar
        bar = progress_bar(total=total, desc='teacher cache', unit='img', enabled=True)
    written = skipped = bytes_written = 0
    for name, resize, flip, dataset in datasets:
        for index in range(len(dataset)):
            if bar is not None:
                bar.update(1)
            if cache.is_done(name, index):
                skipped += 1
                continue
            if stop_after is not None and written >= stop_after:
                if bar is not None:
                    bar.close()
                return dict(entries=total, written=written, skipped=skipped,
                            bytes_written=bytes_written, estimate_gb=estimate_gb,
                            estimate_bytes=total * entry_bytes, stopped=True)
            packed = dataset[index]
            meta = packed['data_samples'].metainfo
            key = cache_key(meta['img_path'], meta.get('flip_direction') if meta.get('flip')
                            else None, meta['img_shape'])
            feat = teacher_maps_of(teacher, data_preprocessor, packed, feature, levels)
            bytes_written += cache.put(key, feat, done=(name, index))
            written += 1
    if bar is not None:
        bar.close()
    cache.mark_complete(total)
    log(f'teacher cache {cache.dir}: complete, {written} written now, {skipped} from before, '
        f'{bytes_written / 2**20:.1f} MiB written now')
    return dict(entries=total, written=written, skipped=skipped, bytes_written=bytes_written,
                estimate_gb=estimate_gb, estimate_bytes=total * entry_bytes, stopped=False)


def fill_cache_from_config(cfg, progress: bool = True, stop_after: Optional[int] = None,
                           log: Callable[[str], None] = print, device: Optional[str] = None,
                           overwrite: bool = False) -> dict:
    """Fill the teacher cache of a mimic config (``tools/cache_teacher_features.py``).

    Builds the distiller without its cache (the teacher, the data preprocessor, the stride; with
    ``mimic_levels`` every teacher level a pair mimics, :func:`~.levels.cached_levels`),
    checks that ``model.teacher_cache.pipeline`` is the training pipeline and that the cache can
    represent it, opens the LMDB store for writing (a new one, or one with the same identity to
    resume; a complete one is left as it is) and runs :func:`fill_teacher_cache` over
    ``train_dataloader.dataset``. A folder holding an LMDB that is not a teacher cache is
    refused; a teacher cache of another identity is refused unless ``overwrite``.

    Under DDP (``torch.distributed`` initialised) rank 0 writes and the other ranks wait at a
    barrier; training ranks then all read.

    Args:
        cfg: the mmengine ``Config`` of a ``FeatureMimicDistiller`` with ``teacher_cache``.
        progress: show a progress bar.
        stop_after: stop after writing this many entries (tests).
        log: where messages go.
        device: where the teacher runs (default: cuda if available).
        overwrite: replace a teacher cache of another identity in ``teacher_cache.dir``.

    Returns:
        :func:`fill_teacher_cache`'s statistics (rank 0; ``{}`` on other ranks).

    Raises:
        ValueError: no ``teacher_cache`` in the model, or its pipeline differs from the
            training pipeline (names both).
        CacheError: the dir holds something this tool must not write into, or a full disk.
    """
    from mmengine.dist import barrier, get_rank
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS, MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))  # a fresh process has no scope yet
    model_cfg = copy.deepcopy(cfg.model)
    cache_cfg = model_cfg.pop('teacher_cache', None)
    if not cache_cfg:
        raise ValueError('the config\'s model has no teacher_cache=dict(dir=..., pipeline=...)')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if plain(cache_cfg.get('pipeline')) != plain(dataset_cfg.get('pipeline')):
        raise ValueError('model.teacher_cache.pipeline differs from '
                         'train_dataloader.dataset.pipeline; give the same list (e.g. '
                         'pipeline={{_base_.train_pipeline}}):\n'
                         f'  teacher_cache: {plain(cache_cfg.get("pipeline"))}\n'
                         f'  train dataset: {plain(dataset_cfg.get("pipeline"))}')
    stats = {}
    if get_rank() == 0:
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        distiller = MODELS.build(model_cfg).to(device).eval()
        levels = cached_levels(getattr(distiller, 'mimic_pairs', None))
        plan = plan_cache_pipeline(cache_cfg['pipeline'],
                                   coarsest_stride(levels, int(distiller.teacher_stride)))
        dtype = cache_cfg.get('dtype', 'float16')
        data_preprocessor = model_cfg.get('data_preprocessor') or \
            model_cfg.student.get('data_preprocessor')
        identity = cache_identity(distiller.teacher_model_cfg,
                                  model_cfg.teacher_ckpt,
                                  distiller.teacher_feature, data_preprocessor, plan['cached'],
                                  dtype, levels)
        cache = TeacherFeatureCache(cache_cfg['dir'], identity, dtype=dtype,
                                    max_gb=cache_cfg.get('max_gb', 50.0), readonly=False,
                                    overwrite=overwrite,
                                    entry_shape=TeacherMapGeometry(
                                        distiller.teacher, distiller.teacher_feature,
                                        getattr(distiller.data_preprocessor, 'pad_size_divisor',
                                                1), levels).entry_shape)

        def build_dataset(pipeline):
            return DATASETS.build(dict(copy.deepcopy(dataset_cfg), pipeline=pipeline))

        try:
            stats = fill_teacher_cache(cache, build_dataset, plan, distiller.teacher,
                                       distiller.data_preprocessor, distiller.teacher_feature,
                                       progress=progress, stop_after=stop_after, log=log,
                                       levels=levels)
        finally:
            cache.close()
    barrier()
    return stats
