"""Load local checkpoints with torch's weights-only unpickler, widened for what mmengine writes.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7's own checkpoints do
not pass: their ``message_hub`` pickles :class:`mmengine.logging.HistoryBuffer` objects (with the
statistics methods fetched through ``builtins.getattr``) and numpy arrays and scalars, and the
``meta``/``rng_state`` entries hold numpy values too. ``weights_only=False`` would let any
checkpoint run arbitrary code.

:func:`load_checkpoint_file` therefore calls ``torch.load(..., weights_only=True)`` and widens
torch's allow-list only through torch's own API (:func:`torch.serialization.safe_globals`), with
checked stand-ins registered under the names mmengine's files use:

=====================================================  ============================================
record in the file                                     handled by
=====================================================  ============================================
tensors, storages, ``OrderedDict``, ``torch.Size``     torch's own weights-only allow-list
``numpy.dtype(...)`` (REDUCE) + BUILD                  :func:`_checked_dtype`: plain numeric kinds
                                                       (bool/int/uint/float/complex) only
``numpy.core.multiarray.scalar(dtype, bytes)``         :func:`_checked_scalar`: numeric dtype, data
                                                       of exactly one item
``numpy.core.multiarray._reconstruct`` + BUILD         :class:`_LoadedArray`: the dtype is rebuilt
                                                       from its type string, object/structured
                                                       dtypes and non-bytes data are refused, the
                                                       byte count must match the shape
``mmengine...HistoryBuffer(log, count, max_len)``      :class:`_LoadedHistoryBuffer`: numeric
(files written with mmmimic imported, see below)       histories, positive integer length
``HistoryBuffer`` NEWOBJ + BUILD (older files)         the same class; its state may only hold the
                                                       histories, ``max_length`` and the built-in
                                                       statistics methods
``builtins.getattr(HistoryBuffer, 'mean')`` (older)    :func:`_history_buffer_getattr`: only the
                                                       statistics methods of ``HistoryBuffer``
=====================================================  ============================================

Anything else (``os.system``, ``builtins.eval``, other ``getattr`` chains, unknown classes) is
refused by torch's unpickler before it is called, and :class:`UnsafeCheckpointError` names the
file and the global. TorchScript archives are refused before ``torch.jit.load`` runs any of their
code. Legacy (non-zip) files are read record by record by the same weights-only unpickler (magic
number, protocol and sys-info records included). After loading, the stand-in types are turned back
into plain ``numpy.ndarray`` / ``HistoryBuffer`` objects.

Writing: :func:`register_history_buffer_reducer` makes every ``HistoryBuffer`` pickle as
``HistoryBuffer(log_history, count_history, max_length)`` (no ``getattr`` records), so checkpoints
written with mmmimic imported also load with torch's plain weights-only loader plus
``safe_globals`` for ``HistoryBuffer`` and numpy.

``MMMIMIC_TRUST_CHECKPOINTS=1`` is the opt-out for files you trust: full unpickling, as torch < 2.6
did. :func:`install` registers the loader as mmengine's scheme for local paths, so ``load_from``,
``resume``, ``load_checkpoint`` and ``init_cfg=dict(type='Pretrained')`` all go through it.
"""
import copyreg
import math
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, List, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMMIMIC_TRUST_CHECKPOINTS'
HISTORY_BUFFER_NAME = 'mmengine.logging.history_buffer.HistoryBuffer'
# numpy kinds a checkpoint may hold: bool, signed/unsigned int, float, complex.
_NUMERIC_KINDS = 'biufc'
_STATISTICS = ('min', 'max', 'mean', 'current')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a record the weights-only loader does not allow."""


def _refuse(message: str) -> None:
    raise UnsafeCheckpointError(message)


def trust_checkpoints() -> bool:
    """Whether ``MMMIMIC_TRUST_CHECKPOINTS`` opts out of the weights-only loader."""
    return os.environ.get(TRUST_ENV, '') not in ('', '0')


def _canonical_dtype(dtype: Any) -> np.dtype:
    """A fresh numpy dtype equal to ``dtype``; refuses object, structured and text dtypes."""
    if not isinstance(dtype, np.dtype):
        _refuse(f'expected a numpy dtype, got {type(dtype).__name__}')
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or \
            dtype.kind not in _NUMERIC_KINDS:
        _refuse(f'refused numpy dtype {dtype.str!r} (kind {dtype.kind!r}): only plain numeric '
                'dtypes may be loaded; object and structured dtypes can forge pointers')
    return np.dtype(dtype.str)


def _checked_dtype(spec: Any, align: bool = False, copy: bool = True) -> np.dtype:
    """Stand-in for the ``numpy.dtype(spec, align, copy)`` records of numpy's pickles."""
    if not isinstance(spec, str):
        _refuse(f'refused numpy.dtype({spec!r}): a type string was expected')
    return _canonical_dtype(np.dtype(spec))


def _checked_scalar(dtype: Any, data: Any = None) -> Any:
    """Stand-in for ``numpy.core.multiarray.scalar(dtype, data)``."""
    dtype = _canonical_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        _refuse(f'refused numpy scalar of dtype {dtype.str!r}: expected {dtype.itemsize} bytes '
                f'of data, got {type(data).__name__}')
    return np.frombuffer(data, dtype=dtype)[0].copy()


class _LoadedArray(np.ndarray):
    """What a pickled ``numpy.ndarray`` is rebuilt as; checked before numpy sees the data."""

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            _refuse('refused a numpy array record: unexpected state layout')
        version, shape, dtype, fortran, data = state
        dtype = _canonical_dtype(dtype)
        if not (isinstance(shape, tuple)
                and all(isinstance(n, int) and n >= 0 for n in shape)):
            _refuse(f'refused a numpy array record: bad shape {shape!r}')
        if not isinstance(data, bytes):
            _refuse('refused a numpy array record: its data is not raw bytes '
                    f'({type(data).__name__})')
        if len(data) != math.prod(shape) * dtype.itemsize:
            _refuse(f'refused a numpy array record: {len(data)} bytes of data for shape {shape} '
                    f'of {dtype.str!r}')
        super().__setstate__((version, shape, dtype, bool(fortran), data))


def _checked_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """Stand-in for ``numpy.core.multiarray._reconstruct`` (the empty array before BUILD)."""
    if subtype is not _LoadedArray:
        _refuse(f'refused numpy _reconstruct of {subtype!r}: only numpy.ndarray is allowed')
    return np.ndarray.__new__(_LoadedArray, (0, ), np.uint8)


def _checked_history(values: Any, what: str) -> np.ndarray:
    if isinstance(values, (list, tuple)):
        if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                   for v in values):
            _refuse(f'refused HistoryBuffer: {what} holds non-numeric values')
        return np.array(values)
    if isinstance(values, np.ndarray):
        _canonical_dtype(values.dtype)
        return values
    _refuse(f'refused HistoryBuffer: {what} is a {type(values).__name__}')


class _LoadedHistoryBuffer(HistoryBuffer):
    """What a pickled ``HistoryBuffer`` is rebuilt as; its arguments and state are checked."""

    def __init__(self, log_history: Any = (), count_history: Any = (),
                 max_length: Any = 1000000) -> None:
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            _refuse(f'refused HistoryBuffer: max_length {max_length!r} is not a positive int')
        super().__init__(
            _checked_history(log_history, 'log_history'),
            _checked_history(count_history, 'count_history'), max_length)

    def __setstate__(self, state: Any) -> None:
        allowed = {'max_length', '_log_history', '_count_history', 'statistics_methods'}
        if not isinstance(state, dict) or set(state) - allowed:
            keys = sorted(set(state) - allowed) if isinstance(state, dict) else state
            _refuse(f'refused HistoryBuffer state with unexpected entries {keys!r}')
        for name, method in state.get('statistics_methods', {}).items():
            if name not in _STATISTICS or method is not getattr(HistoryBuffer, name):
                _refuse(f'refused HistoryBuffer statistics method {name!r}: only the built-in '
                        f'{list(_STATISTICS)} may be restored')
        self.__init__(
            state.get('_log_history', ()), state.get('_count_history', ()),
            state.get('max_length', 1000000))


def _history_buffer_getattr(obj: Any, name: Any) -> Any:
    """Stand-in for ``builtins.getattr``: only ``HistoryBuffer.<statistics method>``."""
    if isinstance(obj, type) and issubclass(obj, HistoryBuffer) and name in _STATISTICS:
        return getattr(HistoryBuffer, name)
    owner = obj.__name__ if isinstance(obj, type) else type(obj).__name__
    _refuse(f'refused getattr({owner}, {name!r}): only the statistics methods of '
            'HistoryBuffer may be fetched')


def _numeric_dtype_classes() -> List[type]:
    dtypes = getattr(np, 'dtypes', None)
    return [type(np.dtype(code)) for code in np.typecodes['All']
            if np.dtype(code).kind in _NUMERIC_KINDS] if dtypes is not None else []


def _safe_globals() -> List[Tuple[Any, str]]:
    """The widening of torch's allow-list: checked stand-ins under the names files use."""
    entries = [
        (_LoadedHistoryBuffer, HISTORY_BUFFER_NAME),
        (_history_buffer_getattr, 'builtins.getattr'),
        (_checked_dtype, 'numpy.dtype'),
        (_LoadedArray, 'numpy.ndarray'),
    ]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(_checked_reconstruct, f'{module}._reconstruct'),
                    (_checked_scalar, f'{module}.scalar')]
    # BUILD of a dtype needs its class allowed; only the numeric ones are.
    entries += [(cls, f'{cls.__module__}.{cls.__name__}') for cls in
                dict.fromkeys(_numeric_dtype_classes())]
    return entries


def _finalize(obj: Any) -> Any:
    """Turn the stand-in types back into plain numpy arrays / HistoryBuffers, in place."""
    if isinstance(obj, _LoadedArray):
        return obj.view(np.ndarray)
    if isinstance(obj, _LoadedHistoryBuffer):
        obj.__class__ = HistoryBuffer
        obj._log_history = _finalize(obj._log_history)
        obj._count_history = _finalize(obj._count_history)
        return obj
    if isinstance(obj, np.dtype):
        return _canonical_dtype(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _finalize(value)
        return obj
    if isinstance(obj, list):
        obj[:] = [_finalize(v) for v in obj]
        return obj
    if type(obj) is tuple:  # not torch.Size or other tuple subclasses
        return tuple(_finalize(v) for v in obj)
    return obj


_REFUSAL = re.compile(r'(Unsupported global: GLOBAL \S+|Trying to load unsupported GLOBAL \S+|'
                      r'Trying to call reduce for unrecognized function .*|'
                      r'Can only (?:build|create new object for) .*|refused .*)')


def _explain_refusal(filename: str, error: Exception) -> str:
    text = str(error)
    found = _REFUSAL.search(text)
    what = found.group(1).split('. Please use')[0] if found else text.splitlines()[-1]
    return (f'refused to load checkpoint {filename}: {what}. It holds a record that is not one of '
            'the tensors, numpy values or HistoryBuffers torch and mmengine write, and loading '
            'it could run code from the file. If you trust this file, set '
            f'{TRUST_ENV}=1 to load it with full unpickling.')


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` a local checkpoint with the weights-only loader (see module docstring).

    Args:
        filename: local path.
        map_location: as for :func:`torch.load`.

    Returns:
        the loaded object, numpy values and HistoryBuffers as their plain types.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: a record outside the allow-list (names file and record), or a
            TorchScript archive.
        RuntimeError: the file is not a readable torch checkpoint (names the file).
    """
    if not osp.exists(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    if not osp.isfile(filename):
        raise IsADirectoryError(f'checkpoint path is not a file: {filename}')
    if trust_checkpoints():
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if _REFUSAL.search(str(e)):
            raise UnsafeCheckpointError(_explain_refusal(filename, e)) from None
        raise RuntimeError(f'cannot read checkpoint {filename}: it is not a torch checkpoint or '
                           f'it is damaged ({str(e).splitlines()[-1]})') from None
    except RuntimeError as e:
        if 'TorchScript' in str(e):
            raise UnsafeCheckpointError(
                f'refused to load checkpoint {filename}: it is a TorchScript archive, whose '
                'loading runs code stored in the file; a checkpoint of weights was '
                f'expected. If you trust this file, set {TRUST_ENV}=1.') from None
        raise RuntimeError(f'cannot read checkpoint {filename}: {e}') from None
    except (EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError,
            IndexError, KeyError, TypeError) as e:
        raise RuntimeError(f'cannot read checkpoint {filename}: it is not a torch checkpoint or '
                           f'it is truncated ({type(e).__name__}: {e})') from None
    return _finalize(ckpt)


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_file(osp.expanduser(filename), map_location=map_location)


def _reduce_history_buffer(buffer: HistoryBuffer) -> Tuple[Any, tuple]:
    return HistoryBuffer, (buffer._log_history, buffer._count_history, buffer.max_length)


def register_history_buffer_reducer() -> None:
    """Pickle ``HistoryBuffer`` as a constructor call, without ``getattr`` records."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


def register_checkpoint_loader() -> None:
    """Make the weights-only loader mmengine's scheme for local paths (idempotent)."""
    if CheckpointLoader._schemes.get('') is not _load_from_local:
        CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
