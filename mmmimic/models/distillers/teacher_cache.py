"""TeacherFeatureCache: the frozen teacher's mimicked map, computed once per image and
augmentation state, stored in LMDB and served to :class:`FeatureMimicDistiller` instead of the
teacher's forward pass (docs/advanced_guides/distiller.md, "Teacher-feature cache").

What an entry is: the teacher's map ``teacher_feature`` of ONE image after the deterministic part
of the training pipeline (loading, a resize from a fixed set of scales) and a flip state, computed
by the teacher on that (flipped) image alone, normalised and zero-padded to the data
preprocessor's ``pad_size_divisor`` as the live step pads it. A flipped entry is the teacher's map
of the flipped image, never a flipped map. A stride-aligned crop
(:class:`~mmmimic.datasets.transforms.StrideAlignedRandomCrop`) is served by slicing the whole
image's map at ``offset / stride``: that is the teacher's view of the crop *inside the whole
image*; the live teacher run on the crop alone differs near the crop borders (its receptive field
sees zero padding there instead of the surrounding pixels; measured in docs/advanced_guides/distiller.md).

Storage: one LMDB environment (``lmdb``: one writer, many readers, every entry written in its own
transaction, so an interrupted fill never leaves a half-written entry readable). Entry keys are
``"{img_path}|{flip}|{h}x{w}"`` (``h x w``: the resized image's shape before any crop). Each value
is a small JSON header and the raw bytes. The header is parsed against a closed schema (exactly
``format, key, store, shape, dtype, blake2b``; nothing in it is ever built or executed) and its
blake2b checksum covers the format, the store's identity hash, the key, the shape, the dtype and
the bytes, so an entry is bound to its key and to its store. The cache's identity (hashes of the
teacher's model config, the checkpoint file bytes, the feature index, the data preprocessor's
normalisation and padding, the cached pipeline and the storage dtype) is stored with it and
checked on open.

A store is untrusted data: at every read the entry's key, store, dtype and shape (against the
geometry of the teacher the identity names, when the distiller opened the store) are checked,
and the data file is checked to be unchanged since the store was opened (device, inode, size,
mtime, LMDB transaction id), so a store truncated or rewritten under a running job stops it with
a message instead of a SIGBUS or the wrong targets. ``verify`` recomputes entries from the
training samples themselves (the image the data sample names, through the configured pipeline's
deterministic steps), never from anything stored in the entry.
"""
import copy
import errno
import hashlib
import json
import logging
import math
import os
import os.path as osp
import shutil
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

CACHE_FORMAT = 2  # 2: entries bound to key and store, no recipe (format 1 stores are stale)
_IDENTITY_KEY = b'__identity__'
_COMPLETE_KEY = b'__complete__'
_DONE_PREFIX = b'__done__/'
# data-preprocessor keys that change the teacher's input
_PREPROCESS_KEYS = ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr', 'pad_size_divisor', 'pad_value')
_DTYPES = {'float16': torch.float16, 'float32': torch.float32}
_HEADER_LEN = struct.Struct('<I')
_MAX_HEADER = 4096  # bytes of an entry's JSON header (a real one is ~250)
_MAX_IDENTITY = 1 << 16  # bytes of the identity record
_ENTRY_FIELDS = ('format', 'key', 'store', 'shape', 'dtype', 'blake2b')
_MAX_DIM = 1 << 20  # one dimension of a stored map
_MIN_FREE = 1 << 20  # free bytes a writer needs before LMDB maps its lock file (else SIGBUS)

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


def _free_bytes(folder: str) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _is_disk_full(err: BaseException, folder: str) -> bool:
    """Whether an LMDB / OS error is (most likely) a full disk: ENOSPC, or an I/O error with
    less than ``_MIN_FREE`` bytes left (LMDB reports some ENOSPC cases as EIO)."""
    if (lmdb is not None and isinstance(err, lmdb.DiskError)) or \
            getattr(err, 'errno', None) == errno.ENOSPC or 'No space left' in str(err):
        return True
    free = _free_bytes(folder)
    return 'Input/output error' in str(err) and free is not None and free < _MIN_FREE


def _read_data_size(env, file: str) -> Tuple[int, int]:
    """``(size of data.mdb, bytes up to the end of LMDB's last page)``: a file shorter than
    its last page would kill the process with SIGBUS on the first read past its end."""
    return osp.getsize(file), (env.info()['last_pgno'] + 1) * env.stat()['psize']


def _peek_store(dir: str) -> Tuple[Optional[bytes], bool, int]:
    """``(identity record, complete, number of records)`` of the LMDB in ``dir``, read-only
    (no lock file, nothing written); its data file is checked for truncation first.

    Raises:
        CacheError: not an LMDB, truncated or unreadable (names the file).
    """
    file = osp.join(dir, 'data.mdb')
    try:
        env = lmdb.open(dir, readonly=True, lock=False, readahead=False)
    except lmdb.Error as err:
        raise CacheError(f'teacher cache {file} is not a readable LMDB file ({err})') from err
    try:
        size, needed = _read_data_size(env, file)
        if size < needed:
            raise CacheError(f'teacher cache {file} is truncated: {size} bytes, its last page '
                             f'ends at {needed}; refill it')
        with env.begin() as txn:
            return (txn.get(_IDENTITY_KEY), txn.get(_COMPLETE_KEY) is not None,
                    int(env.stat()['entries']))
    except lmdb.Error as err:
        raise CacheError(f'teacher cache {file} is unreadable ({err})') from err
    finally:
        env.close()


def _parse_identity(raw: bytes, file: str) -> Dict[str, str]:
    """The stored identity record as ``{component: str}``; anything else is refused, naming
    the file (a list, other JSON, an oversized or undecodable record)."""
    where = f'teacher cache {file}: its identity record'
    if len(raw) > _MAX_IDENTITY:
        raise CacheError(f'{where} is {len(raw)} bytes (at most {_MAX_IDENTITY}); not a '
                         'teacher cache')
    try:
        stored = json.loads(raw.decode('utf-8'))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError
        raise CacheError(f'{where} is not valid JSON ({type(err).__name__}: {err})') from None
    if not isinstance(stored, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in stored.items()):
        raise CacheError(f'{where} is not a JSON object of strings (got a '
                         f'{type(stored).__name__}); not a teacher cache this code wrote')
    if 'hash' not in stored:
        raise CacheError(f'{where} has no "hash"; not a teacher cache this code wrote')
    return stored


def cache_marked_complete(dir: str) -> bool:
    """Whether the LMDB store in ``dir`` exists and its fill finished (read-only peek, no
    identity check: opening the cache for use checks that). For progress estimates; an
    unreadable or truncated store counts as not complete."""
    dir = os.fspath(dir)
    if lmdb is None or not osp.isfile(osp.join(dir, 'data.mdb')):
        return False
    try:
        return _peek_store(dir)[1]
    except CacheError:
        return False


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


def _entry_checksum(store: str, key: str, shape: Sequence[int], dtype: str,
                    payload: bytes) -> str:
    """blake2b over what binds an entry (format, store identity hash, key, shape, dtype) and
    its bytes: an entry moved to another key or copied from another store fails it."""
    binding = json.dumps([CACHE_FORMAT, store, key, [int(d) for d in shape], dtype],
                         separators=(',', ':')).encode()
    digest = hashlib.blake2b(binding + b'\n', digest_size=16)
    digest.update(payload)
    return digest.hexdigest()


def _key_shape(key: str) -> Optional[Tuple[int, int]]:
    """``(h, w)`` of a :func:`cache_key` (its last field ``HxW``), or ``None``."""
    parts = key.rsplit('|', 1)[-1].split('x')
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


@TASK_UTILS.register_module()
class TeacherFeatureCache:
    """LMDB store of the teacher's mimicked map per image and augmentation state.

    Every read checks the entry against the store (module docstring): the header's closed
    schema, its key and store binding, its dtype (the store's), its length and checksum, its
    shape (``entry_shape``, when given), and that the data file has not changed since the store
    was opened (read-only stores).

    Args:
        dir: the LMDB directory (``data.mdb`` and ``lock.mdb`` inside).
        identity: :func:`cache_identity` of the current teacher/preprocessor/pipeline.
        dtype: storage dtype, ``'float16'`` (default) or ``'float32'``.
        max_gb: size limit of the store (LMDB map size); filling refuses to start beyond it.
        verify: number of entries recomputed by the live teacher from the first training
            samples that use them (:func:`verify_cached_batch`).
        missing: ``'error'`` (a missing entry raises, naming it) or ``'live'`` (the batch falls
            back to the live teacher; logged).
        readonly: open for reading (training); ``False`` to fill.
        overwrite: (``readonly=False``) replace a teacher cache of another identity in ``dir``
            instead of refusing it. An LMDB that is not a teacher cache is refused regardless.
        entry_shape: ``(h, w) -> (C, map_h, map_w)``: the teacher's map shape for an entry of
            an ``h x w`` image (its key's shape); checked at every read and write.

    Raises:
        CacheError: no cache at ``dir`` (readonly), a stale identity (names the components that
            differ), an unreadable (truncated, corrupt) file, a folder holding an LMDB that is
            not a teacher cache (``readonly=False``), or a full disk.
    """

    def __init__(self, dir: str, identity: Dict[str, str], dtype: str = 'float16',
                 max_gb: float = 50.0, verify: int = 0, missing: str = 'error',
                 readonly: bool = True, overwrite: bool = False,
                 entry_shape: Optional[Callable[[int, int], Sequence[int]]] = None) -> None:
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
        if not isinstance(identity, dict) or not isinstance(identity.get('hash'), str):
            raise ValueError(f'teacher cache identity must be a dict with a "hash" string, got '
                             f'{type(identity).__name__}')
        self.dir = os.fspath(dir)
        self.file = osp.join(self.dir, 'data.mdb')
        self.identity = dict(identity)
        self.dtype = dtype
        self.max_gb = float(max_gb)
        self.verify_k = verify
        self.missing = missing
        self.readonly = readonly
        self.entry_shape = entry_shape
        self.live_fallbacks = 0
        self._stamp = None
        # LMDB's map size: max_gb plus room for pages, keys and headers
        self._map_size = int(self.max_gb * 2**30 * 1.05) + 2**24
        if readonly:
            self._open_reader()
        else:
            self._open_writer(overwrite)

    def _open_reader(self) -> None:
        if not osp.isfile(self.file):
            raise CacheError(f'teacher cache not found: {self.file}; fill it with '
                             f'python tools/cache_teacher_features.py CONFIG')
        try:
            self.env = lmdb.open(self.dir, map_size=self._map_size, readonly=True, lock=False,
                                 readahead=False, max_readers=512)
        except lmdb.Error as err:
            raise CacheError(f'teacher cache {self.file} is unreadable (truncated or corrupt?): '
                             f'{err}') from err
        try:
            self._check_file_size()
            self._stamp = self._file_stamp()
            stored = self._raw_get(_IDENTITY_KEY)
        except lmdb.Error as err:
            raise CacheError(f'teacher cache {self.file} is unreadable (truncated or corrupt?): '
                             f'{err}') from err
        if stored is None:
            raise CacheError(f'teacher cache {self.file} has no identity record (not a '
                             'teacher cache, or its fill never started)')
        self._check_identity(_parse_identity(stored, self.file))

    def _open_writer(self, overwrite: bool) -> None:
        """Open (create or resume) a store for filling. Refuses a symlinked or special
        ``data.mdb`` / ``lock.mdb``, an LMDB that is not a teacher cache, a teacher cache of
        another identity (unless ``overwrite``) and a full disk."""
        if osp.exists(self.dir) and not osp.isdir(self.dir):
            raise CacheError(f'teacher cache dir {self.dir} is not a folder')
        os.makedirs(self.dir, exist_ok=True)
        for name in ('data.mdb', 'lock.mdb'):
            path = osp.join(self.dir, name)
            if osp.islink(path) or (osp.lexists(path) and not osp.isfile(path)):
                raise CacheError(f'teacher cache {path} is a symlink or not a regular file; '
                                 'refusing to write through it (choose another dir)')
        if osp.isfile(self.file):
            stored, _, records = _peek_store(self.dir)
            if stored is None and records:
                raise CacheError(
                    f'{self.dir} holds an LMDB that is not a teacher cache ({self.file}: '
                    f'{records} records, no identity record); refusing to write into it: '
                    'choose another teacher_cache.dir (it is never overwritten)')
            if stored is not None:
                try:
                    found = _parse_identity(stored, self.file)
                except CacheError as err:
                    raise CacheError(f'{err}; refusing to write into {self.dir}: choose '
                                     'another teacher_cache.dir (it is never overwritten)') \
                        from None
                if found.get('hash') != self.identity['hash']:
                    if not overwrite:
                        self._check_identity(found, hint='; pass --overwrite (tools/cache_'
                                             'teacher_features.py) to replace it, or fill '
                                             'a new dir')
                    for name in ('data.mdb', 'lock.mdb'):
                        if osp.lexists(osp.join(self.dir, name)):
                            os.unlink(osp.join(self.dir, name))
        free = _free_bytes(self.dir)
        if free is not None and free < _MIN_FREE:
            raise CacheError(f'disk full: {free} bytes free on {self.dir}; the teacher cache '
                             f'{self.file} needs room for its lock file and pages')
        try:
            self.env = lmdb.open(self.dir, map_size=self._map_size, readonly=False, lock=True,
                                 readahead=False, max_readers=512)
            self._check_file_size()
            stored = self._raw_get(_IDENTITY_KEY)
        except lmdb.Error as err:
            raise CacheError(self._lmdb_message('cannot be opened for writing', err)) from err
        if stored is None:
            self._raw_put(_IDENTITY_KEY, json.dumps(self.identity).encode())
        else:
            self._check_identity(_parse_identity(stored, self.file))

    def __deepcopy__(self, memo: dict) -> 'TeacherFeatureCache':
        """A deep copy of the model (EMA, benchmarks) shares the read handle: the store is
        immutable while training and an LMDB environment cannot be copied."""
        return self

    # ------------------------------------------------------------------ raw LMDB access
    def _lmdb_message(self, what: str, err: BaseException, key=None) -> str:
        where = f'teacher cache {self.file}' + ('' if key is None else f', key {key!r}')
        if _is_disk_full(err, self.dir):
            free = _free_bytes(self.dir)
            return (f'{where}: disk full ({free} bytes free on {self.dir}): {what} ({err}); '
                    'free space or choose another teacher_cache.dir, then rerun to resume')
        return f'{where}: {what} ({type(err).__name__}: {err})'

    def _check_file_size(self) -> None:
        """A truncated data.mdb would crash the process (SIGBUS) on the first read of a page
        past its end: compare its size with the last page LMDB's meta page records."""
        if not osp.isfile(self.file):
            return
        size, needed = _read_data_size(self.env, self.file)
        if size < needed:
            self.env.close()
            raise CacheError(f'teacher cache {self.file} is truncated: {size} bytes, its last '
                             f'page ends at {needed}; refill it')

    def _file_stamp(self) -> Tuple[int, int, int, int, int]:
        st = os.stat(self.file)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                int(self.env.info()['last_txnid']))

    def _check_unchanged(self) -> None:
        """Read-only stores: stop, naming the store, when its data file was replaced, truncated,
        grown, rewritten or written by LMDB since it was opened. Checked before every read,
        so a file truncated under a running job is refused before a page past its end is
        touched (no SIGBUS)."""
        if self._stamp is None:
            return
        try:
            st = os.stat(self.file)
        except OSError as err:
            raise CacheError(f'teacher cache {self.file} disappeared while this job was reading '
                             f'it ({err.strerror}); restart the run') from None
        old = self._stamp
        changes = []
        if (st.st_dev, st.st_ino) != old[:2]:
            changes.append('the file was replaced')
        if st.st_size != old[2]:
            changes.append(f'size {old[2]} -> {st.st_size} bytes')
        if st.st_mtime_ns != old[3]:
            changes.append('modified')
        if not changes:
            txnid = int(self.env.info()['last_txnid'])
            if txnid != old[4]:
                changes.append(f'LMDB transaction {old[4]} -> {txnid}')
        if changes:
            raise CacheError(f'teacher cache {self.file} changed while this job was reading it '
                             f'({", ".join(changes)}); a store must not be refilled, copied '
                             'over or truncated while training reads it: restart the run '
                             '(refill into a new dir if the teacher changed)')

    def _raw_get(self, key: bytes) -> Optional[bytes]:
        self._check_unchanged()
        with self.env.begin(write=False, buffers=False) as txn:
            return txn.get(key)

    def _raw_put(self, key: bytes, value: bytes, extra: Iterable[Tuple[bytes, bytes]] = ()):
        """Write ``key`` (and ``extra`` pairs) in one transaction: all or nothing."""
        if self.readonly:
            raise CacheError(f'teacher cache {self.file} is open read-only')
        try:
            with self.env.begin(write=True) as txn:
                txn.put(key, value)
                for k, v in extra:
                    txn.put(k, v)
        except lmdb.MapFullError as err:
            raise CacheError(f'teacher cache {self.file} is full at max_gb={self.max_gb}; '
                             f'raise teacher_cache.max_gb') from err
        except lmdb.Error as err:
            raise CacheError(self._lmdb_message('write failed', err,
                                                key.decode('utf-8', 'backslashreplace'))) \
                from err

    def _check_identity(self, stored: dict, hint: str = '') -> None:
        if stored.get('hash') == self.identity.get('hash'):
            return
        differ = sorted(k for k in set(stored) | set(self.identity)
                        if k != 'hash' and stored.get(k) != self.identity.get(k))
        if 'format' in differ:
            raise CacheError(f'teacher cache {self.file} was written in cache format '
                             f'{str(stored.get("format"))[:12]!r}; this code reads format '
                             f'{self.identity.get("format")!r} only (entries bound to their key '
                             'and store, no recipe): refill it with '
                             'tools/cache_teacher_features.py into a new dir' + hint)
        raise CacheError(f'teacher cache {self.file} is stale: it was filled for another '
                         f'{", ".join(differ) or "identity"} (stored hash '
                         f'{str(stored.get("hash"))[:12]}, current {self.identity["hash"][:12]}); '
                         'refill it with tools/cache_teacher_features.py into a new dir' + hint)

    # ------------------------------------------------------------------ entries
    @staticmethod
    def _done_key(variant: str, index: int) -> bytes:
        return _DONE_PREFIX + f'{variant}/{index}'.encode()

    def is_done(self, variant: str, index: int) -> bool:
        """Whether the fill already wrote dataset item ``index`` of augmentation ``variant``."""
        return self._raw_get(self._done_key(variant, index)) is not None

    def _expected_shape(self, key: str) -> Optional[Tuple[int, int, int]]:
        if self.entry_shape is None:
            return None
        hw = _key_shape(key)
        if hw is None:
            raise CacheError(f'teacher cache {self.file}: key {key!r} does not end in the '
                             'image shape HxW')
        return tuple(int(d) for d in self.entry_shape(*hw))

    def put(self, key: str, feat: Tensor, done: Optional[Tuple[str, int]] = None) -> int:
        """Store one ``(C, h, w)`` map (in ``dtype``) atomically; returns the bytes written.

        Args:
            key: :func:`cache_key`.
            feat: the teacher's map of the image.
            done: ``(variant, index)`` fill marker, written in the same transaction.

        Raises:
            CacheError: the map overflows the storage dtype, has another shape than
                ``entry_shape`` gives, or the store is full.
        """
        if not isinstance(key, str) or key.startswith('__'):
            raise ValueError(f'teacher cache: invalid entry key {key!r}')
        if feat.dim() != 3:
            raise ValueError(f'teacher cache: entry {key!r} must be (C, h, w), got '
                             f'{tuple(feat.shape)}')
        expected = self._expected_shape(key)
        if expected is not None and tuple(feat.shape) != expected:
            raise CacheError(f'teacher cache {self.file}, key {key!r}: map of shape '
                             f'{tuple(feat.shape)}, the teacher\'s map of this image is '
                             f'{expected}')
        data = feat.detach().to('cpu', _DTYPES[self.dtype]).contiguous()
        if not torch.isfinite(data).all():
            raise CacheError(f'teacher cache: the teacher map of {key!r} is not finite in '
                             f'{self.dtype} (max |x| {feat.abs().max().item():.4g}); use '
                             "dtype='float32'")
        payload = data.numpy().tobytes()
        shape = list(data.shape)
        header = json.dumps(dict(
            format=CACHE_FORMAT, key=key, store=self.identity['hash'], shape=shape,
            dtype=self.dtype,
            blake2b=_entry_checksum(self.identity['hash'], key, shape, self.dtype, payload)),
            separators=(',', ':')).encode()
        value = _HEADER_LEN.pack(len(header)) + header + payload
        extra = [(self._done_key(*done), key.encode())] if done is not None else []
        self._raw_put(key.encode(), value, extra)
        return len(value)

    def _parse_header(self, where: str, value: bytes) -> Tuple[dict, bytes]:
        """The entry's header, parsed against the closed schema, and its payload."""
        if len(value) < _HEADER_LEN.size:
            raise CacheError(f'{where}: corrupt entry header (entry of {len(value)} bytes)')
        (n, ) = _HEADER_LEN.unpack_from(value)
        if n > _MAX_HEADER or _HEADER_LEN.size + n > len(value):
            raise CacheError(f'{where}: corrupt entry header (header length {n}, entry of '
                             f'{len(value)} bytes, at most {_MAX_HEADER})')
        try:
            header = json.loads(value[_HEADER_LEN.size:_HEADER_LEN.size + n].decode('utf-8'))
        except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
            raise CacheError(f'{where}: corrupt entry header (not JSON: {type(err).__name__}: '
                             f'{err})') from None
        if not isinstance(header, dict):
            raise CacheError(f'{where}: corrupt entry header (a JSON {type(header).__name__}, '
                             'not an object)')
        fields = set(header)
        if fields != set(_ENTRY_FIELDS):
            unknown = sorted(str(f)[:40] for f in fields - set(_ENTRY_FIELDS))[:10]
            lacking = sorted(set(_ENTRY_FIELDS) - fields)
            parts = ([f'unknown field(s) {unknown}'] if unknown else []) + \
                ([f'missing field(s) {lacking}'] if lacking else [])
            raise CacheError(f'{where}: entry header is not of this cache format '
                             f'({"; ".join(parts)}): an entry holds exactly '
                             f'{list(_ENTRY_FIELDS)} and nothing in it is built or run; refill '
                             'the cache')
        fmt, shape, dtype = header['format'], header['shape'], header['dtype']
        if type(fmt) is not int or fmt != CACHE_FORMAT:
            raise CacheError(f'{where}: entry format {fmt!r}, this code reads format '
                             f'{CACHE_FORMAT}; refill the cache')
        if not all(isinstance(header[k], str) for k in ('key', 'store', 'dtype', 'blake2b')):
            raise CacheError(f'{where}: corrupt entry header (key, store, dtype and blake2b '
                             'must be strings)')
        if not (isinstance(shape, list) and len(shape) == 3 and
                all(type(d) is int and 0 < d <= _MAX_DIM for d in shape)):
            raise CacheError(f'{where}: corrupt entry header (shape {str(shape)[:80]} is not 3 '
                             f'positive ints <= {_MAX_DIM})')
        if dtype != self.dtype:
            raise CacheError(f'{where}: entry dtype {dtype[:20]!r} is not the store\'s dtype '
                             f'{self.dtype!r}')
        return header, value[_HEADER_LEN.size + n:]

    def _decode(self, key: str, value: bytes) -> Tuple[Tensor, dict]:
        where = f'teacher cache {self.file}, key {key!r}'
        header, payload = self._parse_header(where, value)
        shape, dtype = tuple(header['shape']), header['dtype']
        nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
        if len(payload) != nbytes:
            raise CacheError(f'{where}: truncated entry ({len(payload)} bytes, expected '
                             f'{nbytes} for {shape} {dtype})')
        if _entry_checksum(header['store'], header['key'], shape, dtype, payload) != \
                header['blake2b']:
            raise CacheError(f'{where}: checksum mismatch (corrupt entry)')
        if header['key'] != key:
            raise CacheError(f'{where}: the entry stored here belongs to key '
                             f'{header["key"][:300]!r} (a swapped or moved entry); refill the '
                             'cache')
        if header['store'] != self.identity['hash']:
            raise CacheError(f'{where}: the entry belongs to another store (identity hash '
                             f'{header["store"][:12]}, this store {self.identity["hash"][:12]}:'
                             ' copied from another teacher\'s or pipeline\'s cache); refill '
                             'the cache')
        expected = self._expected_shape(key)
        if expected is not None and shape != expected:
            raise CacheError(f'{where}: entry of shape {shape}, the teacher\'s map of this '
                             f'image is {expected}; refill the cache')
        feat = torch.from_numpy(np.frombuffer(payload, dtype=np.dtype(dtype)).reshape(shape)
                                .copy())
        return feat, header

    def get(self, key: str) -> Optional[Tensor]:
        """The stored ``(C, h, w)`` map (storage dtype) of ``key``, or ``None`` if absent.

        Raises:
            CacheError: the store changed since it was opened, an entry that fails a check
                (schema, key or store binding, dtype, length, checksum, shape; names the file
                and key), or an LMDB error.
        """
        try:
            value = self._raw_get(key.encode())
        except lmdb.Error as err:
            raise CacheError(self._lmdb_message('unreadable', err, key)) from err
        return None if value is None else self._decode(key, value)[0]

    def keys(self) -> List[str]:
        """All entry keys (not the bookkeeping records)."""
        self._check_unchanged()
        with self.env.begin(write=False) as txn:
            return [k.decode('utf-8', 'backslashreplace') for k, _ in txn.cursor()
                    if not k.startswith(b'__')]

    def header(self, key: str) -> dict:
        """The checked header of ``key``'s entry."""
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
                a crop offset that is not a multiple of ``stride``, an entry that fails a
                check (:meth:`get`), entries of different channel counts, or a store that
                changed since it was opened.
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
            if feats and feat.shape[0] != feats[0][1].shape[0]:
                raise CacheError(f'teacher cache {self.file}, key {key!r}: {feat.shape[0]} '
                                 f'channels, key {feats[0][0]!r} has {feats[0][1].shape[0]}')
            h, w = sample.metainfo['img_shape'][:2]
            rows, cols = -(-int(h) // stride), -(-int(w) // stride)
            feats.append((key, feat[:, y // stride:y // stride + rows,
                                    x // stride:x // stride + cols]))
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
        out = torch.zeros(len(feats), feats[0][1].shape[0], height, width, dtype=dtype)
        for i, (_, feat) in enumerate(feats):
            rows, cols = min(feat.shape[1], height), min(feat.shape[2], width)
            out[i, :, :rows, :cols] = feat[:, :rows, :cols]
        return out.to(device, non_blocking=True), []

    # ------------------------------------------------------------------ verification
    def check_entry(self, key: str, live: Tensor, min_cosine: float = 0.9999
                    ) -> Optional[Tuple[float, float]]:
        """Compare ``key``'s entry with ``live``, the live teacher's map recomputed from the
        training sample of that key (:func:`make_sample_computer`).

        Returns:
            ``(cosine, max relative error)``, or ``None`` when there is no entry.

        Raises:
            CacheError: the entry does not match (cosine < ``min_cosine``, a relative error
                beyond the storage dtype's rounding: 2**-10 for float16, 1e-5 for float32, or
                another shape); names the file, the key and the numbers.
        """
        stored = self.get(key)
        if stored is None:
            return None
        live = live.float().cpu()
        tol = 2**-10 if self.dtype == 'float16' else 1e-5
        cos, rel = compare_maps(stored.float(), live)
        if stored.shape != live.shape or cos < min_cosine or rel > tol:
            raise CacheError(f'teacher cache {self.file}, key {key!r}: does not match the '
                             f'live teacher on that training sample (shape '
                             f'{tuple(stored.shape)} vs {tuple(live.shape)}, cosine {cos:.6f}, '
                             f'max rel. error {rel:.3g} > {tol:.3g}); refill the cache')
        return cos, rel


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
        if isinstance(resize.get('scale'), list):  # _plain() turns tuples to lists
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


def make_sample_computer(teacher, data_preprocessor, plan: dict,
                         feature: int) -> Callable[[dict], Tuple[str, Tensor]]:
    """``training sample meta -> (key, live teacher map)`` for ``verify``.

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
        target = tuple(int(v) for v in metainfo.get('precrop_shape',
                                                      metainfo['img_shape'])[:2])
        shapes = []
        for i, resize in enumerate(plan['resizes']):
            if (i, flip) not in pipelines:
                pipelines[(i, flip)] = Compose(recipe_pipeline(plan['loading'], resize, flip,
                                                               with_annotations=False))
            packed = pipelines[(i, flip)](dict(img_path=metainfo['img_path'], img_id=0))
            shapes.append(tuple(packed['data_samples'].img_shape[:2]))
            if shapes[-1] == target:
                return key, teacher_map_of(teacher, data_preprocessor, packed, feature)
        raise CacheError(f'teacher cache verify: no resize of the training pipeline gives the '
                         f'shape {target} of {key!r} (they give {shapes})')

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
    # what is still to write (a resumed fill has part of it in data.mdb already) must fit
    need = int(total * entry_bytes * 1.05) + _MIN_FREE - osp.getsize(cache.file)
    free = _free_bytes(cache.dir)
    if free is not None and need > free:
        raise CacheError(f'disk full: the teacher cache {cache.file} needs about '
                         f'{need / 2**30:.3f} GiB more, {free / 2**30:.3f} GiB free on '
                         f'{cache.dir}; free space or choose another teacher_cache.dir')
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
            bytes_written += cache.put(key, feat, done=(name, index))
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
    cache.entry_shape = distiller_entry_shape(distiller)
    if not cache.complete and cache.missing == 'error':
        raise CacheError(f'teacher cache {cache.file} is incomplete (its fill was interrupted); '
                         "rerun tools/cache_teacher_features.py to resume, or set missing='live'")
    return cache, plan


def teacher_map_geometry(distiller, batch_shape: Tuple[int, int]) -> Tuple[int, int, int]:
    """``(C, h, w)`` of the teacher's mimicked map for a ``batch_shape`` input, measured once
    per shape with one forward on zeros (the network's padding arithmetic, e.g. 62x83 cells for
    an unpadded 1000x1333 input at stride 16) and remembered."""
    sizes = distiller.__dict__.setdefault('_teacher_map_sizes', {})
    channels = distiller.__dict__.setdefault('_teacher_map_channels', {})
    batch_shape = tuple(int(d) for d in batch_shape)
    if batch_shape not in sizes:
        param = next(distiller.teacher.parameters())
        with torch.no_grad():
            feat = distiller.teacher.extract_feat(param.new_zeros(1, 3, *batch_shape))
        feat = feat[distiller.teacher_feature]
        sizes[batch_shape] = tuple(feat.shape[-2:])
        channels[batch_shape] = int(feat.shape[1])
    return (channels[batch_shape], ) + sizes[batch_shape]


def teacher_map_shape(distiller, batch_shape: Tuple[int, int]) -> Tuple[int, int]:
    """``(h, w)`` of the teacher's mimicked map for a ``batch_shape`` input
    (:func:`teacher_map_geometry`)."""
    return teacher_map_geometry(distiller, batch_shape)[1:]


def distiller_entry_shape(distiller) -> Callable[[int, int], Tuple[int, int, int]]:
    """``(h, w) -> (C, map_h, map_w)``: the shape of the entry of an ``h x w`` image, i.e. the
    teacher's map of the image padded to the data preprocessor's ``pad_size_divisor``
    (:func:`teacher_map_geometry`: the teacher the store's identity names)."""
    divisor = int(getattr(distiller.data_preprocessor, 'pad_size_divisor', 1) or 1)

    def entry_shape(h: int, w: int) -> Tuple[int, int, int]:
        return teacher_map_geometry(distiller, (-(-h // divisor) * divisor,
                                                -(-w // divisor) * divisor))

    return entry_shape


def verify_cached_batch(distiller, batch_data_samples) -> List[str]:
    """``verify=k``: recompute the entries of the first ``k`` distinct training samples the
    cache serves with the live teacher, from the samples themselves
    (:func:`make_sample_computer`), and compare (:meth:`TeacherFeatureCache.check_entry`).
    Sets ``distiller._teacher_cache_verified`` once ``k`` entries matched.

    Returns:
        the keys checked in this batch.

    Raises:
        CacheError: an entry that does not match the live teacher (names file, key, numbers).
    """
    cache = distiller.teacher_cache
    checked = distiller.__dict__.setdefault('_teacher_cache_checked', [])
    compute = distiller.__dict__.get('_teacher_cache_compute')
    if compute is None:
        compute = distiller.__dict__['_teacher_cache_compute'] = make_sample_computer(
            distiller.teacher, distiller.data_preprocessor, distiller._teacher_cache_plan,
            distiller.teacher_feature)
    now = []
    for sample in batch_data_samples:
        if len(checked) >= cache.verify_k:
            break
        key = sample_cache_key(sample.metainfo)[0]
        if key in checked or cache.get(key) is None:  # missing: serve() says what happens
            continue
        cache.check_entry(key, compute(sample.metainfo)[1])
        checked.append(key)
        now.append(key)
    if len(checked) >= cache.verify_k:
        distiller._teacher_cache_verified = True
        print_log(f'teacher cache: {len(checked)} entries served to training match the live '
                  'teacher recomputed from their samples', logger='current')
    return now


def cached_teacher_feats(distiller, batch_inputs: Tensor, batch_data_samples) -> Tuple[Tensor]:
    """The teacher features a mimic step uses, from the distiller's cache.

    Only ``teacher_feats[distiller.teacher_feature]`` is a map (the one mimicked); the other
    positions are ``None``. While training, the entries of the first ``verify`` distinct
    samples are recomputed by the live teacher (:func:`verify_cached_batch`). A batch with a
    missing entry (``missing='live'``) runs the live teacher, logged.
    """
    cache = distiller.teacher_cache
    if distiller.training and not distiller._teacher_cache_verified:
        verify_cached_batch(distiller, batch_data_samples)
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
                           log: Callable[[str], None] = print, device: Optional[str] = None,
                           overwrite: bool = False) -> dict:
    """Fill the teacher cache of a mimic config (``tools/cache_teacher_features.py``).

    Builds the distiller without its cache (the teacher, the data preprocessor, the stride),
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
                                    max_gb=cache_cfg.get('max_gb', 50.0), readonly=False,
                                    overwrite=overwrite,
                                    entry_shape=distiller_entry_shape(distiller))

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
