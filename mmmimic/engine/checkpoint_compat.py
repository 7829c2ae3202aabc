"""Loading MMEngine checkpoints under torch >= 2.6 without trusting arbitrary pickles.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7 calls
``torch.load(filename, map_location=...)`` and its own checkpoints do not pass that check: the
``message_hub`` entry pickles :class:`mmengine.logging.HistoryBuffer` objects (whose instance dict
holds bound methods, pickled through ``getattr``) and numpy arrays/scalars, so ``load_from`` and
``--resume`` fail with ``UnpicklingError: Weights only load failed``.

The blunt fix, ``weights_only=False``, lets any checkpoint file run arbitrary code. Instead, local
checkpoints are read with a restricted unpickler that accepts exactly:

* everything torch's own weights-only unpickler accepts (tensors, storages, OrderedDict, ...);
* the types mmengine writes: ``HistoryBuffer``, numpy ``ndarray``/``dtype``/scalars;
* ``getattr`` only in the one shape mmengine's pickles use it: fetching a statistics method
  (``min``, ``max``, ``mean``, ``current``) of a ``HistoryBuffer``.

Any other global is refused with an error naming the file and the global. A user who trusts a file
can set ``MMMIMIC_TRUST_CHECKPOINTS=1`` to fall back to full unpickling (as torch < 2.6 did).

The loader is registered as mmengine's scheme for local paths on ``import mmmimic``, so
``load_from``, ``resume``, ``load_checkpoint`` and ``init_cfg=dict(type='Pretrained')`` all use it.
"""
import os
import os.path as osp
import pickle
import types
from typing import Any, Callable, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMMIMIC_TRUST_CHECKPOINTS'


def _numpy_globals() -> Dict[str, Any]:
    """numpy reconstruction helpers under both the numpy 1.x and 2.x module paths."""
    found = {}
    for mod_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        for name in ('_reconstruct', 'scalar'):
            if hasattr(mod, name):
                found[f'{mod_name}.{name}'] = getattr(mod, name)
    found['numpy.ndarray'] = np.ndarray
    found['numpy.dtype'] = np.dtype
    # numpy >= 1.25 pickles dtypes of arrays as instances of numpy.dtypes.*DType classes.
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            obj = getattr(dtypes_mod, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                found[f'numpy.dtypes.{name}'] = obj
    return found


_HISTORY_BUFFER_METHODS = frozenset(HistoryBuffer._statistics_methods) | {
    'min', 'max', 'mean', 'current'
}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what a pickled :class:`HistoryBuffer` needs."""
    if (isinstance(obj, HistoryBuffer) or obj is HistoryBuffer) and \
            name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refused getattr({type(obj).__name__}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be fetched')


MMENGINE_CHECKPOINT_SAFE_GLOBALS: Dict[str, Any] = {
    'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
    **_numpy_globals(),
}


def _allowed_globals() -> Dict[str, Any]:
    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    allowed.update(MMENGINE_CHECKPOINT_SAFE_GLOBALS)
    for obj in torch.serialization.get_safe_globals():
        if isinstance(obj, tuple):  # (obj, 'module.name') form
            obj, name = obj
        else:
            name = f'{obj.__module__}.{obj.__qualname__}'
        allowed[name] = obj
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """The "restricting globals" unpickler of the Python docs, with mmengine's allow-list."""

    source = '<checkpoint>'

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (('builtins', 'getattr'), ('__builtin__', 'getattr')):
            return _history_buffer_getattr
        key = f'{module}.{name}'
        allowed = _allowed_globals()
        if key in allowed:
            return allowed[key]
        raise pickle.UnpicklingError(
            f'{self.source}: refused to load global {key!r}: it is not a type that mmengine or '
            f'torch write into checkpoints. If you trust this file, set {TRUST_ENV}=1 to load it '
            'with full unpickling.')


def _restricted_pickle_module(source: str) -> types.ModuleType:
    module = types.ModuleType('mmmimic_restricted_pickle')
    module.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith('__')})
    module.Unpickler = type('Unpickler', (_RestrictedUnpickler, ), {'source': source})
    return module


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` a local checkpoint written by mmengine, safely, under any torch >= 1.13."""
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    if os.environ.get(TRUST_ENV, '') not in ('', '0'):
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        return torch.load(
            filename,
            map_location=map_location,
            weights_only=False,
            pickle_module=_restricted_pickle_module(filename))
    except pickle.UnpicklingError:
        raise
    except (RuntimeError, EOFError, OSError) as e:
        raise RuntimeError(f'cannot read checkpoint {filename}: {e}') from e


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    filename = osp.expanduser(filename)
    return load_checkpoint_file(filename, map_location=map_location)


_REGISTERED = False


def allow_mmengine_checkpoint_types() -> Callable:
    """Register the restricted local-file loader as mmengine's default scheme (idempotent)."""
    global _REGISTERED
    if not _REGISTERED:
        CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
        _REGISTERED = True
    return _load_from_local


allow_mmengine_checkpoint_types()
