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
import io
import math
import os
import os.path as osp
import pickle
import pickletools
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


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


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
    """What a pickled ``numpy.ndarray`` is rebuilt as; checked before numpy sees the data.

    It can only be made by :func:`_checked_reconstruct` (an empty array, then the checked BUILD):
    a NEWOBJ record ``ndarray.__new__(shape, dtype, buffer)`` would skip every check (an object
    array over forged pointers, or any amount of memory from a few bytes), so ``__new__``
    refuses.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> '_LoadedArray':
        _refuse(f'refused numpy.ndarray.__new__{_short(args)}: arrays may only be rebuilt '
                'through numpy\'s _reconstruct record and its checked state')

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


#: nesting depth the post-load walk accepts (mmengine's checkpoints nest fewer than 10 levels)
MAX_DEPTH = 200


def _finalize(obj: Any) -> Any:
    """Turn the stand-in types back into plain numpy arrays / HistoryBuffers, in place.

    Each container is visited once (shared and self-containing references are not walked
    again), and nesting deeper than :data:`MAX_DEPTH` is refused, so a small file cannot make
    the walk take exponential time or overflow the stack.
    """
    done = {}

    def walk(obj: Any, depth: int) -> Any:
        if isinstance(obj, _LoadedArray):
            return obj.view(np.ndarray)
        if isinstance(obj, np.dtype):
            return _canonical_dtype(obj)
        if not isinstance(obj, (dict, list, _LoadedHistoryBuffer)) and type(obj) is not tuple:
            return obj  # tensors, numbers, strings, torch.Size and other tuple subclasses
        if id(obj) in done:
            return done[id(obj)]
        if depth > MAX_DEPTH:
            _refuse(f'refused a record nested deeper than {MAX_DEPTH} levels: checkpoints of '
                    'weights are a few levels deep')
        if isinstance(obj, _LoadedHistoryBuffer):
            done[id(obj)] = obj
            obj.__class__ = HistoryBuffer
            obj._log_history = walk(obj._log_history, depth + 1)
            obj._count_history = walk(obj._count_history, depth + 1)
        elif isinstance(obj, dict):
            done[id(obj)] = obj
            for key, value in obj.items():
                obj[key] = walk(value, depth + 1)
        elif isinstance(obj, list):
            done[id(obj)] = obj
            obj[:] = [walk(v, depth + 1) for v in obj]
        else:  # a plain tuple: rebuilt (a tuple cannot contain itself)
            done[id(obj)] = tuple(walk(v, depth + 1) for v in obj)
        return done[id(obj)]

    return walk(obj, 0)


# Callables of torch's own allow-list that allocate memory for integer arguments:
# ``bytearray(n)`` and the legacy tensor classes (``torch.FloatTensor(n)``).
_ALLOCATING = re.compile(r'^(?:builtins|__builtin__)\.bytearray$|^torch\.(?:cuda\.)?\w*Tensor$')
_INT_OPS = {'INT', 'BININT', 'BININT1', 'BININT2', 'LONG', 'LONG1', 'LONG4'}
_STR_OPS = {'STRING', 'BINSTRING', 'SHORT_BINSTRING', 'UNICODE', 'BINUNICODE',
            'SHORT_BINUNICODE', 'BINUNICODE8'}
_MARK = object()


def _storage_itemsize(name: str) -> int:
    """Bytes per element of a storage class named in a persistent id (16 when unknown)."""
    short = name.rsplit('.', 1)[-1]
    for dtype, storage in torch.storage._dtype_to_storage_type_map().items():
        if storage == short:
            return dtype.itemsize
    return 1 if short == 'UntypedStorage' else 16


def _ints(value: Any, depth: int = 0) -> List[int]:
    """The integers in a scanned argument (nested tuples to 3 levels)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == 'int':
        return [value[1]]
    if isinstance(value, list) and depth < 3:
        return [n for v in value for n in _ints(v, depth + 1)]
    return []


def _scan_records(stream: Any, budget: int) -> None:
    """Read one pickle's opcodes (nothing is run) and refuse the records that ask for more memory
    than the file can hold: ``bytearray(n)`` / ``torch.FloatTensor(n)`` with sizes beyond
    ``budget`` bytes, and storages whose element count exceeds what the file stores.

    A small symbolic stack follows literals, globals, tuples and the memo; everything else is
    an opaque value.
    """
    stack, memo = [], {}

    def pop_mark():
        items = []
        while stack and stack[-1] is not _MARK:
            items.append(stack.pop())
        if stack:
            stack.pop()
        return items[::-1]

    for op, arg, pos in pickletools.genops(stream):
        name = op.name
        if name in _INT_OPS:
            stack.append(('int', int(arg)))
        elif name in _STR_OPS:
            stack.append(('str', arg))
        elif name == 'GLOBAL':
            stack.append(('global', arg.replace(' ', '.')))
        elif name == 'STACK_GLOBAL':
            attr, module = stack.pop() if stack else None, stack.pop() if stack else None
            both = isinstance(module, tuple) and isinstance(attr, tuple)
            stack.append(('global', f'{module[1]}.{attr[1]}' if both else '?'))
        elif name == 'MARK':
            stack.append(_MARK)
        elif name == 'TUPLE':
            stack.append(pop_mark())
        elif name in ('TUPLE1', 'TUPLE2', 'TUPLE3'):
            n = int(name[-1])
            items = stack[-n:] if len(stack) >= n else []
            del stack[-n:]
            stack.append(list(items))
        elif name == 'EMPTY_TUPLE':
            stack.append([])
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
            memo[arg] = stack[-1] if stack else None
        elif name == 'MEMOIZE':
            memo[len(memo)] = stack[-1] if stack else None
        elif name in ('GET', 'BINGET', 'LONG_BINGET'):
            stack.append(memo.get(arg))
        elif name in ('REDUCE', 'NEWOBJ', 'NEWOBJ_EX'):
            if name == 'NEWOBJ_EX' and stack:
                stack.pop()  # kwargs
            args = stack.pop() if stack else None
            func = stack.pop() if stack else None
            if isinstance(func, tuple) and func[0] == 'global' and _ALLOCATING.match(func[1]):
                per_item = 1 if func[1].endswith('bytearray') else 8  # at most 8 per tensor item
                wanted = math.prod(_ints(args)) * per_item if _ints(args) else 0
                if wanted > budget:
                    _refuse(f'refused {func[1]}{_short(tuple(_ints(args)))} at byte {pos}: '
                            f'it asks for {wanted} bytes, more than the file holds ({budget})')
            stack.append(None)
        elif name in ('BINPERSID', 'PERSID'):
            pid = stack.pop() if name == 'BINPERSID' and stack else None
            if isinstance(pid, list) and len(pid) >= 5 and pid[0] == ('str', 'storage') and \
                    isinstance(pid[1], tuple) and pid[1][0] == 'global':
                numel = _ints(pid[4])
                wanted = numel[0] * _storage_itemsize(pid[1][1]) if numel else 0
                if wanted > budget:
                    key = pid[2][1] if isinstance(pid[2], tuple) else '?'
                    _refuse(f'refused storage record {key} at byte {pos}: {numel[0]} elements of '
                            f'{pid[1][1]} need {wanted} bytes, more than the file holds '
                            f'({budget})')
            stack.append(None)
        elif name == 'POP':
            del stack[-1:]
        elif name == 'POP_MARK':
            pop_mark()
        elif name == 'DUP':
            stack.append(stack[-1] if stack else None)
        elif name in ('APPEND', 'BUILD'):
            del stack[-1:]
        elif name == 'SETITEM':
            del stack[-2:]
        elif name in ('APPENDS', 'SETITEMS', 'ADDITEMS'):
            pop_mark()
        elif name in ('LIST', 'DICT', 'FROZENSET', 'OBJ', 'INST'):
            pop_mark()
            stack.append(None)
        elif name in ('STOP', 'PROTO', 'FRAME'):
            pass
        else:  # other pushes: None, bools, floats, bytes, empty containers, ...
            stack.append(None)


def _scan_file(filename: str) -> None:
    """Run :func:`_scan_records` over the pickles of a zip or legacy checkpoint."""
    budget = osp.getsize(filename)
    if zipfile.is_zipfile(filename):
        with zipfile.ZipFile(filename) as archive:
            damaged = archive.testzip()  # every record against its CRC-32 (torch writes them)
            if damaged is not None:
                raise RuntimeError(f'record {damaged} fails its CRC-32 check: the file was '
                                   'changed or damaged after it was written')
            for info in archive.infolist():
                if info.filename.endswith('data.pkl') and info.filename.count('/') == 1:
                    if info.file_size > budget:
                        _refuse(f'refused record {info.filename}: it claims {info.file_size} '
                                f'bytes, more than the file holds ({budget})')
                    with archive.open(info) as fh:
                        _scan_records(io.BytesIO(fh.read()), budget)
        return
    with open(filename, 'rb') as fh:
        # legacy: magic number, protocol, sys info, the object, the storage keys
        for _ in range(5):
            if not fh.peek(1):
                break
            _scan_records(fh, budget)


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
        _scan_file(filename)
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(filename, map_location=map_location, weights_only=True)
        return _finalize(ckpt)
    except UnsafeCheckpointError as e:  # the record scan or the post-load walk
        raise UnsafeCheckpointError(f'refused to load checkpoint {filename}: {e}') from None
    except RecursionError:
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: its records nest too deeply to read '
            '(RecursionError); checkpoints of weights are a few levels deep') from None
    except MemoryError:
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: a record asks for more memory than this '
            'machine has (MemoryError)') from None
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
