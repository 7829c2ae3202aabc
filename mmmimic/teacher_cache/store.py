"""TeacherFeatureCache: the LMDB store of the frozen teacher's mimicked map(s) per image and
augmentation state (docs/advanced_guides/distiller.md, "Teacher-feature cache").

What an entry is: the teacher's map ``teacher_feature`` (or, for pyramid mimic, every mimicked
teacher level: one tensor per level, :mod:`.levels`) of ONE image after the deterministic part
of the training pipeline (loading, a resize from a fixed set of scales) and a flip state, computed
by the teacher on that (flipped) image alone, normalised and zero-padded to the data
preprocessor's ``pad_size_divisor`` as the live step pads it. A flipped entry is the teacher's map
of the flipped image, never a flipped map. A stride-aligned crop
(:class:`~mmmimic.datasets.transforms.StrideAlignedRandomCrop`) is served by slicing the whole
image's map at ``offset / stride``: that is the teacher's view of the crop *inside the whole
image*; the live teacher run on the crop alone differs near the crop borders (its receptive field
sees zero padding there instead of the surrounding pixels; measured in
docs/advanced_guides/distiller.md).

Storage: one LMDB environment (``lmdb``: one writer, many readers, every entry written in its own
transaction, so an interrupted fill never leaves a half-written entry readable). Entry keys are
``"{img_path}|{flip}|{h}x{w}"`` (``h x w``: the resized image's shape before any crop). Each value
is a safetensors file (:mod:`~mmmimic.teacher_cache.codec`), bound by its checksum to its key and
its store, holding exactly the tensors the store's identity names. The cache's identity
(:func:`~mmmimic.teacher_cache.identity.cache_identity`) is stored with it and checked on open.

A store is untrusted data: at every read the entry's key, store, dtype and shape (against the
geometry of the teacher the identity names, when the distiller opened the store) are checked,
and the data file is checked to be unchanged since the store was opened (device, inode, size,
mtime, LMDB transaction id), so a store truncated or rewritten under a running job stops it with
a message instead of a SIGBUS or the wrong targets. ``verify`` recomputes entries from the
training samples themselves (:func:`~mmmimic.teacher_cache.fill.make_sample_computer`), never
from anything stored in the entry.
"""
import errno
import json
import os
import os.path as osp
import shutil
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .codec import DTYPES, decode_levels, encode_entry
from .identity import CacheError, identity_mismatch, key_shape, parse_identity
from .levels import SINGLE, entry_tensors, parse_levels_record
from .serving import check_entry, serve_levels

try:
    import lmdb
except ImportError:  # pragma: no cover - lmdb is a runtime requirement
    lmdb = None

IDENTITY_KEY = b'__identity__'
COMPLETE_KEY = b'__complete__'
DONE_PREFIX = b'__done__/'
MIN_FREE = 1 << 20  # free bytes a writer needs before LMDB maps its lock file (else SIGBUS)


def free_bytes(folder: str) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(err: BaseException, folder: str) -> bool:
    """Whether an LMDB / OS error is (most likely) a full disk: ENOSPC, or an I/O error with
    less than ``MIN_FREE`` bytes left (LMDB reports some ENOSPC cases as EIO)."""
    if (lmdb is not None and isinstance(err, lmdb.DiskError)) or \
            getattr(err, 'errno', None) == errno.ENOSPC or 'No space left' in str(err):
        return True
    free = free_bytes(folder)
    return 'Input/output error' in str(err) and free is not None and free < MIN_FREE


def read_data_size(env, file: str) -> Tuple[int, int]:
    """``(size of data.mdb, bytes up to the end of LMDB's last page)``: a file shorter than
    its last page would kill the process with SIGBUS on the first read past its end."""
    return osp.getsize(file), (env.info()['last_pgno'] + 1) * env.stat()['psize']


def peek_store(dir: str) -> Tuple[Optional[bytes], bool, int]:
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
        size, needed = read_data_size(env, file)
        if size < needed:
            raise CacheError(f'teacher cache {file} is truncated: {size} bytes, its last page '
                             f'ends at {needed}; refill it')
        with env.begin() as txn:
            return (txn.get(IDENTITY_KEY), txn.get(COMPLETE_KEY) is not None,
                    int(env.stat()['entries']))
    except lmdb.Error as err:
        raise CacheError(f'teacher cache {file} is unreadable ({err})') from err
    finally:
        env.close()


def cache_marked_complete(dir: str) -> bool:
    """Whether the LMDB store in ``dir`` exists and its fill finished (read-only peek, no
    identity check: opening the cache for use checks that). For progress estimates; an
    unreadable or truncated store counts as not complete."""
    dir = os.fspath(dir)
    if lmdb is None or not osp.isfile(osp.join(dir, 'data.mdb')):
        return False
    try:
        return peek_store(dir)[1]
    except CacheError:
        return False


class TeacherFeatureCache:
    """LMDB store of the teacher's mimicked map(s) per image and augmentation state.

    Every read checks the entry against the store (module docstring): the header's closed
    schema (exactly the store's tensors: ``'map'``, or ``'level{j}'`` per level of the
    identity's ``teacher_levels``), its key and store binding, its dtype (the store's), its
    length and checksum, its shape(s) (``entry_shape``, when given), and that the data file has
    not changed since the store was opened (read-only stores).

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
            an ``h x w`` image (its key's shape), or ``{tensor name: shape}`` for a pyramid
            store; checked at every read and write.

    Raises:
        CacheError: no cache at ``dir`` (readonly), a stale identity (names the components that
            differ), an unreadable (truncated, corrupt) file, a folder holding an LMDB that is
            not a teacher cache (``readonly=False``), or a full disk.
    """

    def __init__(self, dir: str, identity: Dict[str, str], dtype: str = 'float16',
                 max_gb: float = 50.0, verify: int = 0, missing: str = 'error',
                 readonly: bool = True, overwrite: bool = False,
                 entry_shape: Optional[Callable[[int, int], Union[Sequence[int], dict]]] = None
                 ) -> None:
        if lmdb is None:
            raise ImportError('the teacher cache needs the lmdb package (pip install lmdb)')
        if dtype not in DTYPES:
            raise ValueError(f'teacher_cache.dtype must be one of {sorted(DTYPES)}, got '
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
        #: the tensor names of every entry (``('map',)``, or one per cached pyramid level)
        self.tensors = ((SINGLE, ) if 'teacher_levels' not in self.identity else
                        entry_tensors(parse_levels_record(self.identity['teacher_levels'])))
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
            stored = self._raw_get(IDENTITY_KEY)
        except lmdb.Error as err:
            raise CacheError(f'teacher cache {self.file} is unreadable (truncated or corrupt?): '
                             f'{err}') from err
        if stored is None:
            raise CacheError(f'teacher cache {self.file} has no identity record (not a '
                             'teacher cache, or its fill never started)')
        self._check_identity(parse_identity(stored, self.file))

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
            stored, _, records = peek_store(self.dir)
            if stored is None and records:
                raise CacheError(
                    f'{self.dir} holds an LMDB that is not a teacher cache ({self.file}: '
                    f'{records} records, no identity record); refusing to write into it: '
                    'choose another teacher_cache.dir (it is never overwritten)')
            if stored is not None:
                try:
                    found = parse_identity(stored, self.file)
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
        free = free_bytes(self.dir)
        if free is not None and free < MIN_FREE:
            raise CacheError(f'disk full: {free} bytes free on {self.dir}; the teacher cache '
                             f'{self.file} needs room for its lock file and pages')
        try:
            self.env = lmdb.open(self.dir, map_size=self._map_size, readonly=False, lock=True,
                                 readahead=False, max_readers=512)
            self._check_file_size()
            stored = self._raw_get(IDENTITY_KEY)
        except lmdb.Error as err:
            raise CacheError(self._lmdb_message('cannot be opened for writing', err)) from err
        if stored is None:
            self._raw_put(IDENTITY_KEY, json.dumps(self.identity).encode())
        else:
            self._check_identity(parse_identity(stored, self.file))

    def __deepcopy__(self, memo: dict) -> 'TeacherFeatureCache':
        """A deep copy of the model (EMA, benchmarks) shares the read handle: the store is
        immutable while training and an LMDB environment cannot be copied."""
        return self

    # ------------------------------------------------------------------ raw LMDB access
    def _lmdb_message(self, what: str, err: BaseException, key=None) -> str:
        where = f'teacher cache {self.file}' + ('' if key is None else f', key {key!r}')
        if is_disk_full(err, self.dir):
            free = free_bytes(self.dir)
            return (f'{where}: disk full ({free} bytes free on {self.dir}): {what} ({err}); '
                    'free space or choose another teacher_cache.dir, then rerun to resume')
        return f'{where}: {what} ({type(err).__name__}: {err})'

    def _check_file_size(self) -> None:
        """A truncated data.mdb would crash the process (SIGBUS) on the first read of a page
        past its end: compare its size with the last page LMDB's meta page records."""
        if not osp.isfile(self.file):
            return
        size, needed = read_data_size(self.env, self.file)
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
        if stored.get('hash') != self.identity.get('hash'):
            raise identity_mismatch(self.file, stored, self.identity, hint)

    # ------------------------------------------------------------------ entries
    @staticmethod
    def _done_key(variant: str, index: int) -> bytes:
        return DONE_PREFIX + f'{variant}/{index}'.encode()

    def is_done(self, variant: str, index: int) -> bool:
        """Whether the fill already wrote dataset item ``index`` of augmentation ``variant``."""
        return self._raw_get(self._done_key(variant, index)) is not None

    def _expected_shapes(self, key: str) -> Optional[Dict[str, Tuple[int, int, int]]]:
        if self.entry_shape is None:
            return None
        hw = key_shape(key)
        if hw is None:
            raise CacheError(f'teacher cache {self.file}: key {key!r} does not end in the '
                             'image shape HxW')
        shapes = self.entry_shape(*hw)
        if not isinstance(shapes, Mapping):
            shapes = {SINGLE: shapes}
        return {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}

    def _where(self, key: str, name: str) -> str:
        return f'teacher cache {self.file}, key {key!r}' + \
            ('' if name == SINGLE else f', level tensor {name!r}')

    def put(self, key: str, feat: Union[Tensor, Mapping[str, Tensor]],
            done: Optional[Tuple[str, int]] = None) -> int:
        """Store one ``(C, h, w)`` map, or ``{tensor name: map}`` of a pyramid store (exactly
        its ``tensors``), in ``dtype`` atomically; returns the bytes written.

        Args:
            key: :func:`cache_key`.
            feat: the teacher's map(s) of the image.
            done: ``(variant, index)`` fill marker, written in the same transaction.

        Raises:
            CacheError: other tensors than the store's (names both), a map that overflows the
                storage dtype or has another shape than ``entry_shape`` gives, or a full store.
        """
        if not isinstance(key, str) or key.startswith('__'):
            raise ValueError(f'teacher cache: invalid entry key {key!r}')
        feats = dict(feat) if isinstance(feat, Mapping) else {SINGLE: feat}
        if tuple(sorted(feats)) != tuple(sorted(self.tensors)):
            raise CacheError(f'teacher cache {self.file}, key {key!r}: the maps '
                             f'{sorted(feats)} are not the tensors of this store '
                             f'{list(self.tensors)} (its identity: '
                             f'{self.identity.get("teacher_levels", "one map")})')
        expected = self._expected_shapes(key)
        data = {}
        for name, map_ in feats.items():
            if map_.dim() != 3:
                raise ValueError(f'teacher cache: entry {key!r} must be (C, h, w), got '
                                 f'{tuple(map_.shape)}')
            if expected is not None and tuple(map_.shape) != expected[name]:
                raise CacheError(f'{self._where(key, name)}: map of shape '
                                 f'{tuple(map_.shape)}, the teacher\'s map of this image is '
                                 f'{expected[name]}')
            data[name] = map_.detach().to('cpu', DTYPES[self.dtype]).contiguous()
            if not torch.isfinite(data[name]).all():
                raise CacheError(f'teacher cache: the teacher map of {key!r} is not finite in '
                                 f'{self.dtype} (max |x| {map_.abs().max().item():.4g}); use '
                                 "dtype='float32'")
        value = encode_entry(data[SINGLE] if SINGLE in data else data, key,
                             self.identity['hash'])
        extra = [(self._done_key(*done), key.encode())] if done is not None else []
        self._raw_put(key.encode(), value, extra)
        return len(value)

    def _decode(self, key: str, value: bytes) -> Tuple[Dict[str, Tensor], dict]:
        """The entry's maps and header (:func:`~mmmimic.teacher_cache.codec.decode_levels`),
        checked against its key, this store and the teacher's map shapes of its image."""
        where = f'teacher cache {self.file}, key {key!r}'
        feats, header = decode_levels(where, value, self.dtype, self.tensors)
        if header['key'] != key:
            raise CacheError(f'{where}: the entry stored here belongs to key '
                             f'{header["key"][:300]!r} (a swapped or moved entry); refill the '
                             'cache')
        if header['store'] != self.identity['hash']:
            raise CacheError(f'{where}: the entry belongs to another store (identity hash '
                             f'{header["store"][:12]}, this store {self.identity["hash"][:12]}:'
                             ' copied from another teacher\'s or pipeline\'s cache); refill '
                             'the cache')
        expected = self._expected_shapes(key)
        for name, feat in ({} if expected is None else feats).items():
            if tuple(feat.shape) != expected[name]:
                raise CacheError(f'{self._where(key, name)}: entry of shape '
                                 f'{tuple(feat.shape)}, the teacher\'s map of this image is '
                                 f'{expected[name]}; refill the cache')
        return feats, header

    def get_levels(self, key: str) -> Optional[Dict[str, Tensor]]:
        """``{tensor name: (C, h, w) map}`` (storage dtype) of ``key``, or ``None`` if absent.

        Raises:
            CacheError: the store changed since it was opened, an entry that fails a check
                (schema, key or store binding, dtype, length, checksum, shape; names the file,
                the key and the level tensor), or an LMDB error.
        """
        try:
            value = self._raw_get(key.encode())
        except lmdb.Error as err:
            raise CacheError(self._lmdb_message('unreadable', err, key)) from err
        return None if value is None else self._decode(key, value)[0]

    def get(self, key: str) -> Union[None, Tensor, Dict[str, Tensor]]:
        """The stored ``(C, h, w)`` map of ``key`` (a pyramid store: :meth:`get_levels`'s
        dict), or ``None`` if absent; checked as :meth:`get_levels` checks."""
        feats = self.get_levels(key)
        return feats[SINGLE] if feats is not None and self.tensors == (SINGLE, ) else feats

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
        self._raw_put(COMPLETE_KEY, str(int(num_entries)).encode())

    @property
    def complete(self) -> bool:
        return self._raw_get(COMPLETE_KEY) is not None

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ serving
    def serve(self, data_samples: Sequence, batch_shape: Tuple[int, int], stride: int,
              device, dtype: torch.dtype = torch.float32,
              map_shape: Optional[Tuple[int, int]] = None
              ) -> Tuple[Optional[Tensor], List[str]]:
        """The teacher map ``(B, C, H/s, W/s)`` of a training batch from a single-map store
        (:func:`~.serving.serve_levels` at ``stride``; ``map_shape``: the teacher's map size
        for ``batch_shape``), or ``None`` with the missing keys (``missing='live'``)."""
        if self.tensors != (SINGLE, ):
            raise CacheError(f'teacher cache {self.file} holds the levels '
                             f'{self.identity.get("teacher_levels")}: serve them with '
                             'serve_levels')
        feats, missing = serve_levels(self, data_samples, batch_shape, {SINGLE: int(stride)},
                                      device, dtype,
                                      None if map_shape is None else {SINGLE: map_shape})
        return (None if feats is None else feats[SINGLE]), missing

    def serve_levels(self, data_samples: Sequence, batch_shape: Tuple[int, int],
                     strides: Dict[str, int], device, dtype: torch.dtype = torch.float32,
                     map_shapes: Optional[Dict[str, Tuple[int, int]]] = None
                     ) -> Tuple[Optional[Dict[str, Tensor]], List[str]]:
        """Every tensor of the batch's entries at its stride (:func:`~.serving.serve_levels`)."""
        return serve_levels(self, data_samples, batch_shape, strides, device, dtype, map_shapes)

    # ------------------------------------------------------------------ verification
    def check_entry(self, key: str, live: Union[Tensor, Mapping[str, Tensor]],
                    min_cosine: float = 0.9999) -> Optional[Tuple[float, float]]:
        """Compare ``key``'s entry with ``live``, the live teacher's map (or ``{tensor name:
        map}``) recomputed from the training sample of that key
        (:func:`~.serving.check_entry`: ``(cosine, max relative error)``, ``None`` without an
        entry; a mismatch beyond the dtype's rounding raises, naming file, key and numbers)."""
        live = dict(live) if isinstance(live, Mapping) else {SINGLE: live}
        return check_entry(self, key, live, min_cosine)
