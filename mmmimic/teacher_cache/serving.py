"""Serving a training batch from a :class:`~.store.TeacherFeatureCache` (every cached level at
its own stride) and comparing an entry with the live teacher (``verify``)."""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from .identity import CacheError, sample_cache_key


def serve_levels(cache, data_samples: Sequence, batch_shape: Tuple[int, int],
                 strides: Dict[str, int], device, dtype: torch.dtype = torch.float32,
                 map_shapes: Optional[Dict[str, Tuple[int, int]]] = None
                 ) -> Tuple[Optional[Dict[str, Tensor]], List[str]]:
    """The teacher maps of a training batch from ``cache``, one per tensor of its entries.

    Each sample's entry is sliced per level at its crop offset (``offset / stride`` cells of
    that level) to its ``img_shape`` (rounded up to whole cells) and placed at the top left of
    a zero map of the level's size for ``batch_shape`` (the padded cells are never inside a
    RoI).

    Args:
        cache: the open store.
        data_samples: the batch's data samples (meta: ``img_path``, ``img_shape``, ``flip``,
            ``flip_direction``, with crops ``crop_offset``/``precrop_shape``).
        batch_shape: ``(H, W)`` of the padded batch.
        strides: ``{tensor name: stride}`` of the store's tensors.
        device: where the maps go.
        dtype: the served dtype.
        map_shapes: ``{tensor name: (h, w)}`` of the teacher's maps of a ``batch_shape`` input
            (the network's own size arithmetic); default ``ceil(batch_shape / stride)``.

    Returns:
        ``({name: map (B, C, h, w)} or None, missing keys)``; ``None`` when any entry is
        missing and ``missing='live'``.

    Raises:
        CacheError: a missing entry with ``missing='error'`` (names the file and the key), a
            crop offset that is not a multiple of every stride, an entry that fails a check
            (:meth:`~.store.TeacherFeatureCache.get_levels`), entries of different channel
            counts, or a store that changed since it was opened.
    """
    feats, missing = [], []
    for sample in data_samples:
        key, (x, y) = sample_cache_key(sample.metainfo)
        for stride in strides.values():
            if x % stride or y % stride:
                raise CacheError(f'teacher cache: crop offset {(x, y)} of {key!r} is not a '
                                 f'multiple of the teacher stride {stride} '
                                 '(use StrideAlignedRandomCrop)')
        entry = cache.get_levels(key)
        if entry is None:
            missing.append(key)
            continue
        h, w = sample.metainfo['img_shape'][:2]
        sliced = {}
        for name, feat in entry.items():
            if feats and feat.shape[0] != feats[0][1][name].shape[0]:
                raise CacheError(f'teacher cache {cache.file}, key {key!r}: {feat.shape[0]} '
                                 f'channels, key {feats[0][0]!r} has '
                                 f'{feats[0][1][name].shape[0]}')
            s = strides[name]
            rows, cols = -(-int(h) // s), -(-int(w) // s)
            sliced[name] = feat[:, y // s:y // s + rows, x // s:x // s + cols]
        feats.append((key, sliced))
    if missing:
        if cache.missing == 'error':
            raise CacheError(f'teacher cache {cache.file}: no entry for key {missing[0]!r} '
                             f"({len(missing)} missing in this batch; missing='live' falls "
                             'back to the live teacher)')
        cache.live_fallbacks += 1
        print_log(f'teacher cache: {len(missing)} missing entr(y/ies) (first {missing[0]!r}); '
                  f'this batch uses the live teacher (fallback #{cache.live_fallbacks})',
                  logger='current', level=logging.WARNING)
        return None, missing
    out = {}
    for name, s in strides.items():
        height, width = (map_shapes or {}).get(name) or (-(-batch_shape[0] // s),
                                                         -(-batch_shape[1] // s))
        level = torch.zeros(len(feats), feats[0][1][name].shape[0], height, width, dtype=dtype)
        for i, (_, sliced) in enumerate(feats):
            feat = sliced[name]
            rows, cols = min(feat.shape[1], height), min(feat.shape[2], width)
            level[i, :, :rows, :cols] = feat[:, :rows, :cols]
        out[name] = level.to(device, non_blocking=True)
    return out, []


def check_entry(cache, key: str, live: Dict[str, Tensor], min_cosine: float = 0.9999
                ) -> Optional[Tuple[float, float]]:
    """Compare ``key``'s entry in ``cache`` with ``live`` (``{tensor name: the live teacher's
    map}``, recomputed from the training sample of that key), tensor by tensor.

    Returns:
        ``(lowest cosine, highest max relative error)`` over the tensors, or ``None`` when
        there is no entry.

    Raises:
        CacheError: a tensor that does not match (cosine < ``min_cosine``, a relative error
            beyond the storage dtype's rounding: 2**-10 for float16, 1e-5 for float32, or
            another shape); names the file, the key, the tensor (of a pyramid entry) and the
            numbers.
    """
    stored = cache.get_levels(key)
    if stored is None:
        return None
    tol = 2**-10 if cache.dtype == 'float16' else 1e-5
    worst = None
    for name in stored:
        got, want = stored[name].float(), live[name].float().cpu()
        cos, rel = compare_maps(got, want)
        if got.shape != want.shape or cos < min_cosine or rel > tol:
            what = '' if len(stored) == 1 else f' (level tensor {name!r})'
            raise CacheError(f'teacher cache {cache.file}, key {key!r}{what}: does not match '
                             f'the live teacher on that training sample (shape '
                             f'{tuple(got.shape)} vs {tuple(want.shape)}, cosine {cos:.6f}, '
                             f'max rel. error {rel:.3g} > {tol:.3g}); refill the cache')
        worst = (cos, rel) if worst is None else (min(worst[0], cos), max(worst[1], rel))
    return worst


def compare_maps(a: Tensor, b: Tensor) -> Tuple[float, float]:
    """``(cosine similarity, max relative error)`` of two maps; the relative error of a cell is
    ``|a - b| / max(|b|, 1e-3 * max|b|)`` so near-zero cells do not blow it up."""
    if a.shape != b.shape:
        return -1.0, float('inf')
    a, b = a.double().flatten(), b.double().flatten()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    floor = 1e-3 * b.abs().max().clamp_min(1e-12)
    rel = ((a - b).abs() / b.abs().clamp_min(floor)).max().item()
    return cos, rel
