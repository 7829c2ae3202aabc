"""TeacherFeatureCache: the frozen teacher's mimicked map, computed once per image and
augmentation state, stored in LMDB and served to :class:`FeatureMimicDistiller` instead of the
teacher's forward pass (docs/distiller.md, "Teacher-feature cache").

What an entry is: the teacher's map ``teacher_feature`` of ONE image after the deterministic part
of the training pipeline (loading, a resize from a fixed set of scales) and a flip state, computed
by the teacher on that (flipped) image alone, normalised and zero-padded to the data
preprocessor's ``pad_size_divisor`` as the live step pads it. A flipped entry is the teacher's map
of the flipped image, never a flipped map. A stride-aligned crop
(:class:`~mmmimic.datasets.transforms.StrideAlignedRandomCrop`) is served by slicing the whole
image's map at ``offset / stride``: that is the teacher's view of the crop *inside the whole
image*; the live teacher run on the crop alone differs near the crop borders (its receptive field
sees zero padding there instead of the surrounding pixels; measured in docs/distiller.md).

Storage: one LMDB environment (``lmdb``: one writer, many readers, every entry written in its own
transaction, so an interrupted fill never leaves a half-written entry readable). Entry keys are
``"{img_path}|{flip}|{h}x{w}"`` (``h x w``: the resized image's shape before any crop). Each value
carries a small JSON header (shape, dtype, blake2b checksum and how to recompute it) before the
raw bytes. The cache's identity (hashes of the teacher's model config, the checkpoint file bytes,
the feature index, the data preprocessor's normalisation and padding, the cached pipeline and the
storage dtype) is stored with it and checked on open.
"""
import copy
import hashlib
import json
import logging
import os
import os.path as osp
import struct
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from torch import Tensor

from mmdet.registry import TASK_UTILS

try:
    import lmdb
except ImportError:  # pragma: no cover - lmdb is a runtime requirement
    lmdb = None

CACHE_FORMAT = 1
_IDENTITY_KEY = b'__identity__'
_COMPLETE_KEY = b'__complete__'
_DONE_PREFIX = b'__done__/'
# data-preprocessor keys that change the teacher's input
_PREPROCESS_KEYS = ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr', 'pad_size_divisor', 'pad_value')
_DTYPES = {'float16': torch.float16, 'float32': torch.float32}
_HEADER_LEN = struct.Struct('<I')

# Pipeline steps before the cached point that do not change the pixels the teacher sees.
_LOADING = ('LoadImageFromFile', 'LoadAnnotations', 'FilterAnnotations')
# Why each refused transform cannot be cached, and what to use instead.
_REFUSED = {
    'RandomResize': 'draws arbitrary sizes; use RandomChoiceResize with a fixed list of scales',
    'RandomCrop': 'crops at any pixel offset; use StrideAlignedRandomCrop (offsets that are '
                  'multiples of the teacher stride)',
    'PhotoMetricDistortion': 'changes the pixels the teacher sees at random; drop it or train '
                             'with the live teacher (teacher_cache=None)',
}
_DATA_SAMPLE_META = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                     'flip_direction')


class CacheError(RuntimeError):
    """A cache that cannot serve: stale identity, missing entry, corrupt or truncated file."""


def _plain(obj):
    """Config objects as plain, JSON-able, order-independent data."""
    if isinstance(obj, ConfigDict):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _sha256(obj) -> str:
    return hashlib.sha256(json.dumps(_plain(obj), sort_keys=True).encode()).hexdigest()


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the teacher checkpoint's identity)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def cache_identity(teacher_cfg: dict, teacher_ckpt: str, teacher_feature: int,
                   data_preprocessor: dict, pipeline: Sequence[dict],
                   dtype: str) -> Dict[str, str]:
    """Hashes of everything the cached maps depend on, one per component plus their combination.

    Args:
        teacher_cfg: the teacher's model config.
        teacher_ckpt: path of the teacher checkpoint (its file bytes are hashed).
        teacher_feature: index of the cached map in ``teacher.extract_feat(...)``.
        data_preprocessor: the distiller's data preprocessor config (mean, std, channel order,
            padding are hashed).
        pipeline: the training pipeline up to the cached point (see :func:`plan_cache_pipeline`).
        dtype: storage dtype.

    Returns:
        ``{component: sha256, ..., 'hash': sha256 of all}``.
    """
    dp = dict(data_preprocessor or {})
    identity = dict(
        format=str(CACHE_FORMAT),
        teacher_config=_sha256(teacher_cfg),
        teacher_checkpoint=file_sha256(teacher_ckpt),
        teacher_feature=str(int(teacher_feature)),
        normalisation=_sha256({k: dp.get(k) for k in _PREPROCESS_KEYS}),
        pipeline=_sha256(list(pipeline)),
        dtype=dtype)
    identity['hash'] = _sha256(identity)
    return identity


def cache_marked_complete(dir: str) -> bool:
    """Whether the LMDB store in ``dir`` exists and its fill finished (read-only peek, no
    identity check: opening the cache for use checks that). For progress estimates."""
    dir = os.fspath(dir)
    if lmdb is None or not osp.isfile(osp.join(dir, 'data.mdb')):
        return False
    try:
        env = lmdb.open(dir, readonly=True, lock=False, readahead=False)
    except lmdb.Error:
        return False
    try:
        with env.begin() as txn:
            return txn.get(_COMPLETE_KEY) is not None
    finally:
        env.close()


def cache_key(img_path: str, flip_direction: Optional[str], shape: Sequence[int]) -> str:
    """The entry key: image path, flip state (``'none'`` or the direction), resized ``h x w``."""
    return f'{img_path}|{flip_direction or "none"}|{int(shape[0])}x{int(shape[1])}'


def sample_cache_key(metainfo: dict) -> Tuple[str, Tuple[int, int]]:
    """The key of a training data sample's entry and the crop offset ``(x, y)`` to serve.

    Raises:
        CacheError: the data sample lacks a meta key the cache needs (named).
    """
    for name in ('img_path', 'img_shape'):
        if name not in metainfo:
            raise CacheError(f'teacher cache: the data sample has no {name!r} meta key; '
                             f'PackDetInputs must keep it (meta_keys)')
    flip = metainfo.get('flip_direction') if metainfo.get('flip', False) else None
    shape = metainfo.get('precrop_shape', metainfo['img_shape'])
    offset = tuple(metainfo.get('crop_offset', (0, 0)))
    return cache_key(metainfo['img_path'], flip, shape), offset


def plan_cache_pipeline(pipeline: Sequence[dict], stride: int) -> dict:
    """Check that the cache can represent every augmentation of ``pipeline`` and split it.

    Accepted, in this order: loading steps (``LoadImageFromFile``, ``LoadAnnotations``,
    ``FilterAnnotations``); optionally one ``Resize`` (fixed scale) or ``RandomChoiceResize`` (a
    fixed list of scales); optionally ``RandomFlip`` (horizontal); optionally
    ``StrideAlignedRandomCrop`` (after the flip, so its offset is in the flipped image)
    with this ``stride``; ``PackDetInputs`` (with ``crop_offset`` and ``precrop_shape`` in its
    ``meta_keys`` when cropping).

    Args:
        pipeline: the training pipeline (list of transform configs).
        stride: the teacher map's stride.

    Returns:
        ``dict(loading=[...], resizes=[one Resize config per scale, or [None]], flip=bool,
        crop=cfg|None,
        cached=[...])``; ``cached`` is the pipeline up to the cached point, hashed into the
        identity.

    Raises:
        ValueError: a transform the cache cannot represent, or one out of order (names it and
            the alternative).
    """
    steps = [dict(_plain(t)) for t in pipeline]
    plan = dict(loading=[], resizes=[], flip=False, crop=None)
    stage = 0  # 0 loading, 1 resized, 2 flipped, 3 cropped, 4 packed
    for step in steps:
        kind = step.get('type')
        where = f'teacher_cache: pipeline step {kind!r}'
        if kind in _REFUSED:
            raise ValueError(f'{where} {_REFUSED[kind]}')
        if kind in _LOADING and stage == 0:
            plan['loading'].append(step)
        elif kind == 'Resize' and stage == 0:
            if step.get('scale') is None:
                raise ValueError(f'{where} needs a fixed scale (scale_factor resizing is not '
                                 'keyed by the cache)')
            plan['resizes'] = [step]
            stage = 1
        elif kind == 'RandomChoiceResize' and stage == 0:
            scales = step.get('scales')
            if not scales:
                raise ValueError(f'{where} needs a fixed list of scales')
            plan['resizes'] = [
                dict(type='Resize', scale=tuple(s), keep_ratio=step.get('keep_ratio', True))
                for s in scales]
            stage = 1
        elif kind == 'RandomFlip' and stage <= 1:
            direction = step.get('direction', 'horizontal')
            if direction not in ('horizontal', ['horizontal']):
                raise ValueError(f'{where} direction {direction!r}: only horizontal flips are '
                                 'cached; use RandomFlip(direction="horizontal")')
            plan['flip'] = True
            stage = 2
        elif kind == 'StrideAlignedRandomCrop' and stage <= 2:
            if step.get('stride', 16) != stride:
                raise ValueError(f'{where} stride={step.get("stride", 16)} but the teacher map '
                                 f'has stride {stride}; set stride={stride}')
            plan['crop'] = step
            stage = 3
        elif kind == 'PackDetInputs':
            meta = step.get('meta_keys', _DATA_SAMPLE_META)
            need = ['img_path', 'img_shape', 'flip', 'flip_direction']
            if plan['crop'] is not None:
                need += ['crop_offset', 'precrop_shape']
            lacking = [k for k in need if k not in meta]
            if lacking:
                raise ValueError(f'{where} meta_keys lack {lacking}, which the teacher cache '
                                 'needs to find each sample\'s entry')
            stage = 4
        elif kind == 'RandomFlip' or kind == 'StrideAlignedRandomCrop' or kind in _LOADING:
            raise ValueError(f'{where} is out of order: the cache needs loading, one resize '
                             '(Resize or RandomChoiceResize), RandomFlip, '
                             'StrideAlignedRandomCrop, PackDetInputs')
        else:
            raise ValueError(f'{where} is not supported with the teacher cache (it cannot key or '
                             'serve its effect on the teacher\'s input); remove it or train with '
                             'the live teacher (teacher_cache=None)')
    if stage != 4:
        raise ValueError('teacher_cache: the pipeline needs a final PackDetInputs')
    if not plan['resizes']:
        plan['resizes'] = [None]  # images at their own size
    plan['cached'] = plan['loading'] + [dict(type='CachedResizes', resizes=plan['resizes']),
                                        dict(type='CachedFlip', on=plan['flip'])]
    return plan


@TASK_UTILS.register_module()
class TeacherFeatureCache:
    """LMDB store of the teacher's mimicked map per image and augmentation state.

    Args:
        dir: the LMDB directory (``data.mdb`` and ``lock.mdb`` inside).
        identity: :func:`cache_identity` of the current teacher/preprocessor/pipeline.
        dtype: storage dtype, ``'float16'`` (default) or ``'float32'``.
        max_gb: size limit of the store (LMDB map size); filling refuses to start beyond it.
        verify: number of random entries re-checked against the live teacher at the start of
            training (:meth:`verify`).
        missing: ``'error'`` (a missing entry raises, naming it) or ``'live'`` (the batch falls
            back to the live teacher; logged).
        readonly: open for reading (training); ``False`` to fill.

    Raises:
        CacheError: no cache at ``dir`` (readonly), a stale identity (names the components that
            differ), or an unreadable (truncated, corrupt) file.
    """

    def __init__(self, dir: str, identity: Dict[str, str], dtype: str = 'float16',
                 max_gb: float = 50.0, verify: int = 0, missing: str = 'error',
                 readonly: bool = True) -> None:
        if lmdb is None:
            raise ImportError('the teacher cache needs the lmdb package (pip install lmdb)')
        if dtype not in _DTYPES:
            raise ValueError(f'teacher_cache.dtype must be one of {sorted(_DTYPES)}, got '
                             f'{dtype!r}')
        if missing not in ('error', 'live'):
            raise ValueError(f"teacher_cache.missing must be 'error' or 'live', got {missing!r}")
        if isinstance(verify, bool) or not isinstance(verify, int) or verify < 0:
            raise ValueError(f'teacher_cache.verify must be an int >= 0, got {verify!r}')
        if not float(max_gb) > 0:
            raise ValueError(f'teacher_cache.max_gb must be > 0, got {max_gb!r}')
        self.dir = dir
        self.file = osp.join(dir, 'data.mdb')
        self.identity = dict(identity)
        self.dtype = dtype
        self.max_gb = float(max_gb)
        self.verify_k = verify
        self.missing = missing
        self.readonly = readonly
        self.live_fallbacks = 0
        if readonly and not osp.isfile(self.file):
            raise CacheError(f'teacher cache not found: {self.file}; fill it with '
                             f'python tools/cache_teacher_features.py CONFIG')
        os.makedirs(dir, exist_ok=True)
        try:
            # LMDB's map size: max_gb plus room for pages, keys and headers
            map_size = int(self.max_gb * 2**30 * 1.05) + 2**24
            self.env = lmdb.open(dir, map_size=map_size, readonly=readonly,
                                 lock=not readonly, readahead=False, max_readers=512)
            self._check_file_size()
            stored = self._raw_get(_IDENTITY_KEY)
        except lmdb.Error as err:
            raise CacheError(f'teacher cache {self.file} is unreadable (truncated or corrupt?): '
                             f'{err}') from err
        if stored is None:
            if readonly:
                raise CacheError(f'teacher cache {self.file} has no identity record (not a '
                                 'teacher cache, or its fill never started)')
            self._raw_put(_IDENTITY_KEY, json.dumps(self.identity).encode())
        else:
            self._check_identity(json.loads(stored))

    def __deepcopy__(self, memo: dict) -> 'TeacherFeatureCache':
        """A deep copy of the model (EMA, benchmarks) shares the read handle: the store is
        immutable while training and an LMDB environment cannot be copied."""
        return self

    # ------------------------------------------------------------------ raw LMDB access
    def _check_file_size(self) -> None:
        """A truncated data.mdb would crash the process (SIGBUS) on the first read of a page
        past its end: compare its size with the last page LMDB's meta page records."""
        if not osp.isfile(self.file):
            return
        needed = (self.env.info()['last_pgno'] + 1) * self.env.stat()['psize']
        size = osp.getsize(self.file)
        if size < needed:
            self.env.close()
            raise CacheError(f'teacher cache {self.file} is truncated: {size} bytes, its last '
                             f'page ends at {needed}; refill it')

    def _raw_get(self, key: bytes) -> Optional[bytes]:
        with self.env.begin(write=False, buffers=False) as txn:
            return txn.get(key)

    def _raw_put(self, key: bytes, value: bytes, extra: Iterable[Tuple[bytes, bytes]] = ()):
        """Write ``key`` (and ``extra`` pairs) in one transaction: all or nothing."""
        try:
            with self.env.begin(write=True) as txn:
                txn.put(key, value)
                for k, v in extra:
                    txn.put(k, v)
        except lmdb.MapFullError as err:
            raise CacheError(f'teacher cache {self.file} is full at max_gb={self.max_gb}; '
                             f'raise teacher_cache.max_gb') from err

    def _check_identity(self, stored: dict) -> None:
        if stored.get('hash') == self.identity.get('hash'):
            return
        differ = sorted(k for k in set(stored) | set(self.identity)
                        if k != 'hash' and stored.get(k) != self.identity.get(k))
        raise CacheError(f'teacher cache {self.file} is stale: it was filled for another '
                         f'{", ".join(differ)} (stored hash {str(stored.get("hash"))[:12]}, '
                         f'current {self.identity["hash"][:12]}); refill it with '
                         'tools/cache_teacher_features.py into a new dir')

    # ------------------------------------------------------------------ entries
    @staticmethod
    def _done_key(variant: str, index: int) -> bytes:
        return _DONE_PREFIX + f'{variant}/{index}'.encode()

    def is_done(self, variant: str, index: int) -> bool:
        """Whether the fill already wrote dataset item ``index`` of augmentation ``variant``."""
        return self._raw_get(self._done_key(variant, index)) is not None

    def put(self, key: str, feat: Tensor, recipe: Optional[dict] = None,
            done: Optional[Tuple[str, int]] = None) -> int:
        """Store one ``(C, h, w)`` map (in ``dtype``) atomically; returns the bytes written.

        Args:
            key: :func:`cache_key`.
            feat: the teacher's map of the image.
            recipe: how to recompute it (``img_path``, ``resize``, ``flip``) for :meth:`verify`.
            done: ``(variant, index)`` fill marker, written in the same transaction.

        Raises:
            CacheError: the map overflows the storage dtype, or the store is full.
        """
        if feat.dim() != 3:
            raise ValueError(f'teacher cache: entry {key!r} must be (C, h, w), got '
                             f'{tuple(feat.shape)}')
        data = feat.detach().to('cpu', _DTYPES[self.dtype]).contiguous()
        if not torch.isfinite(data).all():
            raise CacheError(f'teacher cache: the teacher map of {key!r} is not finite in '
                             f'{self.dtype} (max |x| {feat.abs().max().item():.4g}); use '
                             "dtype='float32'")
        payload = data.numpy().tobytes()
        header = json.dumps(dict(shape=list(data.shape), dtype=self.dtype,
                                 blake2b=hashlib.blake2b(payload, digest_size=16).hexdigest(),
                                 recipe=recipe)).encode()
        value = _HEADER_LEN.pack(len(header)) + header + payload
        extra = [(self._done_key(*done), key.encode())] if done is not None else []
        self._raw_put(key.encode(), value, extra)
        return len(value)

    def _decode(self, key: str, value: bytes) -> Tuple[Tensor, dict]:
        where = f'teacher cache {self.file}, key {key!r}'
        try:
            (n, ) = _HEADER_LEN.unpack_from(value)
            header = json.loads(value[_HEADER_LEN.size:_HEADER_LEN.size + n])
            payload = value[_HEADER_LEN.size + n:]
            dtype = np.dtype(header['dtype'])
            shape = tuple(header['shape'])
        except (struct.error, ValueError, KeyError, TypeError) as err:
            raise CacheError(f'{where}: corrupt entry header ({err})') from err
        if len(payload) != int(np.prod(shape)) * dtype.itemsize:
            raise CacheError(f'{where}: truncated entry ({len(payload)} bytes, expected '
                             f'{int(np.prod(shape)) * dtype.itemsize} for {shape} {dtype})')
        if hashlib.blake2b(payload, digest_size=16).hexdigest() != header.get('blake2b'):
            raise CacheError(f'{where}: checksum mismatch (corrupt entry)')
        feat = torch.from_numpy(np.frombuffer(payload, dtype=dtype).reshape(shape).copy())
        return feat, header

    def get(self, key: str) -> Optional[Tensor]:
        """The stored ``(C, h, w)`` map (storage dtype) of ``key``, or ``None`` if absent.

        Raises:
            CacheError: a corrupt or truncated entry (names the file and key).
        """
        try:
            value = self._raw_get(key.encode())
        except lmdb.Error as err:
            raise CacheError(f'teacher cache {self.file}, key {key!r}: unreadable ({err})') \
                from err
        return None if value is None else self._decode(key, value)[0]

    def keys(self) -> List[str]:
        """All entry keys (not the bookkeeping records)."""
        with self.env.begin(write=False) as txn:
            return [k.decode() for k, _ in txn.cursor() if not k.startswith(b'__')]

    def header(self, key: str) -> dict:
        value = self._raw_get(key.encode())
        if value is None:
            raise CacheError(f'teacher cache {self.file}: no entry for key {key!r}')
        return self._decode(key, value)[1]

    def mark_complete(self, num_entries: int) -> None:
        self._raw_put(_COMPLETE_KEY, str(int(num_entries)).encode())

    @property
    def complete(self) -> bool:
        return self._raw_get(_COMPLETE_KEY) is not None

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ serving
    def serve(self, data_samples: Sequence, batch_shape: Tuple[int, int], stride: int,
              device, dtype: torch.dtype = torch.float32,
              map_shape: Optional[Tuple[int, int]] = None
              ) -> Tuple[Optional[Tensor], List[str]]:
        """The teacher map of a training batch from the cache.

        Each sample's entry is sliced at its crop offset (``offset / stride`` cells) to its
        ``img_shape`` (rounded up to whole cells) and placed at the top left of a zero map of
        the batch's size ``batch_shape / stride`` (the padded cells are never inside a RoI).

        Args:
            data_samples: the batch's data samples (meta: ``img_path``, ``img_shape``, ``flip``,
                ``flip_direction``, with crops ``crop_offset``/``precrop_shape``).
            batch_shape: ``(H, W)`` of the padded batch.
            stride: the teacher map's stride.
            device: where the map goes.
            dtype: the served dtype.
            map_shape: ``(h, w)`` of the teacher's map of a ``batch_shape`` input (the
                network's own size arithmetic); default ``ceil(batch_shape / stride)``.

        Returns:
            ``(map (B, C, H/s, W/s) or None, missing keys)``; the map is ``None`` when any
            entry is missing and ``missing='live'``.

        Raises:
            CacheError: a missing entry with ``missing='error'`` (names the file and the key),
                a crop offset that is not a multiple of ``stride``, or a corrupt entry.
        """
        feats, missing = [], []
        for sample in data_samples:
            key, (x, y) = sample_cache_key(sample.metainfo)
            if x % stride or y % stride:
                raise CacheError(f'teacher cache: crop offset {(x, y)} of {key!r} is not a '
                                 f'multiple of the teacher stride {stride} '
                                 '(use StrideAlignedRandomCrop)')
            feat = self.get(key)
            if feat is None:
                missing.append(key)
                continue
            h, w = sample.metainfo['img_shape'][:2]
            rows, cols = -(-int(h) // stride), -(-int(w) // stride)
            feats.append(feat[:, y // stride:y // stride + rows, x // stride:x // stride + cols])
        if missing:
            if self.missing == 'error':
                raise CacheError(f'teacher cache {self.file}: no entry for key {missing[0]!r} '
                                 f"({len(missing)} missing in this batch; missing='live' falls "
                                 'back to the live teacher)')
            self.live_fallbacks += 1
            print_log(f'teacher cache: {len(missing)} missing entr(y/ies) (first {missing[0]!r}); '
                      f'this batch uses the live teacher (fallback #{self.live_fallbacks})',
                      logger='current', level=logging.WARNING)
            return None, missing
        height, width = map_shape or (-(-batch_shape[0] // stride), -(-batch_shape[1] // stride))
        out = torch.zeros(len(feats), feats[0].shape[0], height, width, dtype=dtype)
        for i, feat in enumerate(feats):
            rows, cols = min(feat.shape[1], height), min(feat.shape[2], width)
            out[i, :, :rows, :cols] = feat[:, :rows, :cols]
        return out.to(device, non_blocking=True), []

    # ------------------------------------------------------------------ verification
    def verify(self, compute: Callable[[dict], Tensor], k: Optional[int] = None,
               seed: int = 0, min_cosine: float = 0.9999) -> List[str]:
        """Re-check ``k`` random entries against the live teacher.

        Args:
            compute: ``recipe -> (C, h, w)`` live teacher map (:func:`compute_recipe`).
            k: how many (default: ``verify`` given at construction).
            seed: the random choice of entries.
            min_cosine: the required cosine similarity (the max relative error must also stay
                within the storage dtype's rounding: 2**-10 for float16, 1e-5 for float32).

        Returns:
            the checked keys.

        Raises:
            CacheError: an entry that does not match the live teacher (names file, key, numbers).
        """
        k = self.verify_k if k is None else k
        keys = self.keys()
        if k <= 0 or not keys:
            return []
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(keys), size=min(k, len(keys)), replace=False)
        chosen = [keys[i] for i in picks]
        tol = 2**-10 if self.dtype == 'float16' else 1e-5
        for key in chosen:
            stored, header = self._decode(key, self._raw_get(key.encode()))
            live = compute(header['recipe']).float().cpu()
            cos, rel = compare_maps(stored.float(), live)
            if stored.shape != live.shape or cos < min_cosine or rel > tol:
                raise CacheError(f'teacher cache {self.file}, key {key!r}: does not match the '
                                 f'live teacher (shape {tuple(stored.shape)} vs '
                                 f'{tuple(live.shape)}, cosine {cos:.6f}, max rel. error '
                                 f'{rel:.3g} > {tol:.3g}); refill the cache')
        print_log(f'teacher cache: {len(chosen)} random entries match the live teacher',
                  logger='current')
        return chosen


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


def recipe_pipeline(plan_loading: Sequence[dict], resize: dict, flip: bool,
                    with_annotations: bool = True) -> List[dict]:
    """The deterministic pipeline of one augmentation state: loading, the resize, the flip (with
    prob 1) and ``PackDetInputs`` keeping the meta the cache keys on."""
    steps = [copy.deepcopy(t) for t in plan_loading
             if with_annotations or t['type'] == 'LoadImageFromFile']
    if resize is not None:
        resize = copy.deepcopy(dict(resize))
        if isinstance(resize.get('scale'), list):  # JSON (entry recipes) turns tuples to lists
            resize['scale'] = tuple(resize['scale'])
        steps.append(resize)
    if flip:
        steps.append(dict(type='RandomFlip', prob=1.0, direction='horizontal'))
    steps.append(dict(type='PackDetInputs', meta_keys=_DATA_SAMPLE_META))
    return steps


@torch.no_grad()
def teacher_map_of(teacher, data_preprocessor, packed: dict, feature: int) -> Tensor:
    """The teacher's map ``feature`` of one packed sample, normalised and padded as in training
    (a batch of one). Returns ``(C, h, w)`` float32 on the teacher's device."""
    data = data_preprocessor(dict(inputs=[packed['inputs']],
                                  data_samples=[packed['data_samples']]), False)
    return teacher.extract_feat(data['inputs'])[feature][0].float()


def make_recipe_computer(teacher, data_preprocessor, loading: Sequence[dict],
                         feature: int) -> Callable[[dict], Tensor]:
    """``recipe -> live teacher map``: loads the image named in an entry's recipe through its
    deterministic pipeline (no annotations needed) and runs the teacher on it."""
    from mmcv.transforms import Compose

    def compute(recipe: dict) -> Tensor:
        pipeline = Compose(recipe_pipeline(loading, recipe['resize'], recipe['flip'],
                                           with_annotations=False))
        packed = pipeline(dict(img_path=recipe['img_path'], img_id=0))
        return teacher_map_of(teacher, data_preprocessor, packed, feature)

    return compute


def fill_teacher_cache(cache: TeacherFeatureCache, build_dataset: Callable[[List[dict]], object],
                       plan: dict, teacher, data_preprocessor, feature: int,
                       progress: bool = True, stop_after: Optional[int] = None,
                       log: Callable[[str], None] = print) -> dict:
    """Write every (image, resize, flip) entry the training pipeline can draw; resumable.

    The size of the whole cache is estimated from the first entry (entries of equal image
    sizes have equal sizes) and checked against ``cache.max_gb`` before anything is written.
    Entries already written (a previous, interrupted fill) are skipped without loading their
    image. Each entry and its fill marker are committed in one LMDB transaction.

    Args:
        cache: a writable :class:`TeacherFeatureCache`.
        build_dataset: ``pipeline -> dataset`` (the training dataset with that pipeline).
        plan: :func:`plan_cache_pipeline` of the training pipeline.
        teacher: the frozen teacher (eval mode).
        data_preprocessor: the distiller's data preprocessor.
        feature: the cached map's index.
        progress: show a progress bar (tqdm).
        stop_after: stop after writing this many entries (tests: an interrupted fill).
        log: where messages go.

    Returns:
        ``dict(entries, written, skipped, bytes_written, estimate_gb)``.

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
    first_map = teacher_map_of(teacher, data_preprocessor, first, feature)
    entry_bytes = first_map.numel() * _DTYPES[cache.dtype].itemsize
    estimate_gb = total * entry_bytes / 2**30
    log(f'teacher cache {cache.dir}: {total} entries ({len(datasets)} augmentation state(s) x '
        f'{len(datasets[0][3])} images), {tuple(first_map.shape)} {cache.dtype} each = '
        f'{entry_bytes / 2**20:.2f} MiB; estimate {estimate_gb:.3f} GiB (max_gb {cache.max_gb})')
    if estimate_gb > cache.max_gb * 0.95:  # LMDB pages and keys need some room
        raise CacheError(f'teacher cache estimate {estimate_gb:.3f} GiB exceeds max_gb='
                         f'{cache.max_gb} (with 5% margin); raise max_gb or cache fewer images')
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc='teacher cache', unit='img')
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
                            bytes_written=bytes_written, estimate_gb=estimate_gb, stopped=True)
            packed = dataset[index]
            meta = packed['data_samples'].metainfo
            key = cache_key(meta['img_path'], meta.get('flip_direction') if meta.get('flip')
                            else None, meta['img_shape'])
            feat = teacher_map_of(teacher, data_preprocessor, packed, feature)
            recipe = dict(img_path=meta['img_path'], resize=resize, flip=flip)
            bytes_written += cache.put(key, feat, recipe=recipe, done=(name, index))
            written += 1
    if bar is not None:
        bar.close()
    cache.mark_complete(total)
    log(f'teacher cache {cache.dir}: complete, {written} written now, {skipped} from before, '
        f'{bytes_written / 2**20:.1f} MiB written now')
    return dict(entries=total, written=written, skipped=skipped, bytes_written=bytes_written,
                estimate_gb=estimate_gb, stopped=False)


# ---------------------------------------------------------------------- distiller side
def build_distiller_cache(distiller, cfg: dict, teacher_cfg: dict, teacher_ckpt: str,
                          data_preprocessor: dict) -> Tuple[TeacherFeatureCache, dict]:
    """Check a distiller's ``teacher_cache`` config and open the cache (read-only).

    Args:
        distiller: the built :class:`FeatureMimicDistiller` (its losses, stride, feature index).
        cfg: ``teacher_cache=dict(dir, pipeline, dtype='float16', max_gb=50, verify=0,
            missing='error')``; ``pipeline`` is the training pipeline (checked by
            :func:`plan_cache_pipeline`).
        teacher_cfg: the teacher's model config.
        teacher_ckpt: the teacher checkpoint path.
        data_preprocessor: the distiller's data preprocessor config.

    Returns:
        ``(cache, plan)``.

    Raises:
        ValueError: an unknown key, a missing ``dir``/``pipeline``, a mimic mode that needs more
            than the cached map (logits mimic, two-stage mimic, a two-stage student),
            batch augments in the data preprocessor, or a transform the cache cannot represent.
        CacheError: the cache is missing, stale, truncated or corrupt.
    """
    cfg = dict(cfg)
    known = {'dir', 'pipeline', 'dtype', 'max_gb', 'verify', 'missing'}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f'unknown teacher_cache key(s) {unknown}; valid: {sorted(known)}')
    for key in ('dir', 'pipeline'):
        if not cfg.get(key):
            raise ValueError(f'teacher_cache.{key} is required (dir: the LMDB folder; '
                             'pipeline: the training pipeline, e.g. {{_base_.train_pipeline}})')
    if distiller.mimic_input not in ('rois', 'images'):
        raise ValueError(f'teacher_cache stores the mimicked map only; mimic_input '
                         f'{distiller.mimic_input!r} (logits mimic or no feature mimic) needs '
                         'the live teacher: remove teacher_cache')
    if distiller.with_roi_mimic or getattr(distiller.student, 'with_roi_head', False):
        raise ValueError('teacher_cache serves the mimicked map only; a two-stage student or '
                         'two-stage mimic needs the live teacher: remove teacher_cache')
    if (data_preprocessor or {}).get('batch_augments'):
        raise ValueError('teacher_cache: the data preprocessor\'s batch_augments change the '
                         'teacher input per batch and cannot be cached; remove them or '
                         'teacher_cache')
    plan = plan_cache_pipeline(cfg['pipeline'], int(distiller.teacher_stride))
    dtype = cfg.get('dtype', 'float16')
    identity = cache_identity(teacher_cfg, teacher_ckpt, distiller.teacher_feature,
                              data_preprocessor, plan['cached'], dtype)
    cache = TASK_UTILS.build(dict(
        type='TeacherFeatureCache', dir=cfg['dir'], identity=identity, dtype=dtype,
        max_gb=cfg.get('max_gb', 50.0), verify=cfg.get('verify', 0),
        missing=cfg.get('missing', 'error'), readonly=True))
    if not cache.complete and cache.missing == 'error':
        raise CacheError(f'teacher cache {cache.file} is incomplete (its fill was interrupted); '
                         "rerun tools/cache_teacher_features.py to resume, or set missing='live'")
    return cache, plan


def teacher_map_shape(distiller, batch_shape: Tuple[int, int]) -> Tuple[int, int]:
    """``(h, w)`` of the teacher's mimicked map for a ``batch_shape`` input, measured once per
    shape with one forward on zeros (the network's padding arithmetic, e.g. 62x83 cells for an
    unpadded 1000x1333 input at stride 16) and remembered."""
    sizes = distiller.__dict__.setdefault('_teacher_map_sizes', {})
    if batch_shape not in sizes:
        param = next(distiller.teacher.parameters())
        with torch.no_grad():
            feat = distiller.teacher.extract_feat(param.new_zeros(1, 3, *batch_shape))
        sizes[batch_shape] = tuple(feat[distiller.teacher_feature].shape[-2:])
    return sizes[batch_shape]


def cached_teacher_feats(distiller, batch_inputs: Tensor, batch_data_samples) -> Tuple[Tensor]:
    """The teacher features a mimic step uses, from the distiller's cache.

    Only ``teacher_feats[distiller.teacher_feature]`` is a map (the one mimicked); the other
    positions are ``None``. At the first training step ``verify`` random entries are re-checked
    against the live teacher. A batch with a missing entry (``missing='live'``) runs the live
    teacher, logged.
    """
    cache = distiller.teacher_cache
    if distiller.training and not distiller._teacher_cache_verified:
        cache.verify(make_recipe_computer(distiller.teacher, distiller.data_preprocessor,
                                          distiller._teacher_cache_plan['loading'],
                                          distiller.teacher_feature))
        distiller._teacher_cache_verified = True
    batch_shape = tuple(batch_inputs.shape[-2:])
    feat, missing = cache.serve(batch_data_samples, batch_shape, int(distiller.teacher_stride),
                                batch_inputs.device, batch_inputs.dtype,
                                teacher_map_shape(distiller, batch_shape))
    if missing:
        return distiller.extract_teacher_feat(batch_inputs)
    index = distiller.teacher_feature
    feats = [None] * (index + 1 if index >= 0 else -index)
    feats[index] = feat
    return tuple(feats)


def fill_cache_from_config(cfg, progress: bool = True, stop_after: Optional[int] = None,
                           log: Callable[[str], None] = print, device: Optional[str] = None
                           ) -> dict:
    """Fill the teacher cache of a mimic config (``tools/cache_teacher_features.py``).

    Builds the distiller without its cache (the teacher, the data preprocessor, the stride),
    checks that ``model.teacher_cache.pipeline`` is the training pipeline and that the cache can
    represent it, opens the LMDB store for writing (a new one, or one with the same identity to
    resume) and runs :func:`fill_teacher_cache` over ``train_dataloader.dataset``.

    Under DDP (``torch.distributed`` initialised) rank 0 writes and the other ranks wait at a
    barrier; training ranks then all read.

    Args:
        cfg: the mmengine ``Config`` of a ``FeatureMimicDistiller`` with ``teacher_cache``.
        progress: show a progress bar.
        stop_after: stop after writing this many entries (tests).
        log: where messages go.
        device: where the teacher runs (default: cuda if available).

    Returns:
        :func:`fill_teacher_cache`'s statistics (rank 0; ``{}`` on other ranks).

    Raises:
        ValueError: no ``teacher_cache`` in the model, or its pipeline differs from the
            training pipeline (names both).
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
    if _plain(cache_cfg.get('pipeline')) != _plain(dataset_cfg.get('pipeline')):
        raise ValueError('model.teacher_cache.pipeline differs from '
                         'train_dataloader.dataset.pipeline; give the same list (e.g. '
                         'pipeline={{_base_.train_pipeline}}):\n'
                         f'  teacher_cache: {_plain(cache_cfg.get("pipeline"))}\n'
                         f'  train dataset: {_plain(dataset_cfg.get("pipeline"))}')
    stats = {}
    if get_rank() == 0:
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        distiller = MODELS.build(model_cfg).to(device).eval()
        plan = plan_cache_pipeline(cache_cfg['pipeline'], int(distiller.teacher_stride))
        dtype = cache_cfg.get('dtype', 'float16')
        data_preprocessor = model_cfg.get('data_preprocessor') or \
            model_cfg.student.get('data_preprocessor')
        identity = cache_identity(type(distiller)._teacher_model_cfg(model_cfg.teacher),
                                  model_cfg.teacher_ckpt,
                                  distiller.teacher_feature, data_preprocessor, plan['cached'],
                                  dtype)
        cache = TeacherFeatureCache(cache_cfg['dir'], identity, dtype=dtype,
                                    max_gb=cache_cfg.get('max_gb', 50.0), readonly=False)

        def build_dataset(pipeline):
            return DATASETS.build(dict(copy.deepcopy(dataset_cfg), pipeline=pipeline))

        try:
            stats = fill_teacher_cache(cache, build_dataset, plan, distiller.teacher,
                                       distiller.data_preprocessor, distiller.teacher_feature,
                                       progress=progress, stop_after=stop_after, log=log)
        finally:
            cache.close()
    barrier()
    return stats
