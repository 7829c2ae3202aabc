"""One cache entry as bytes: a safetensors file holding the store's tensors (one ``'map'``, or
one ``'level{j}'`` per cached pyramid level, :mod:`.levels`) and the string metadata
``format``, ``key``, ``store`` and ``blake2b``.

Safetensors (https://huggingface.co/docs/safetensors) is self-describing (dtype, shape and byte
offsets in a JSON header) and its reader never executes anything. An entry is still untrusted
data, so before the library reads it :func:`decode_entry` bounds the header length by the value's
length and by :data:`MAX_HEADER`, parses the header against a closed schema (exactly that tensor
and that metadata; nothing in it is built or run), checks each tensor's dtype against the
store's, its shape (3 positive ints, each at most :data:`MAX_DIM`) and that the tensors' byte
ranges tile the data exactly, each its shape's size. The blake2b checksum covers the format, the
store's identity hash, the key, the shape(s), the dtype and the bytes, so an entry is bound to
its key and to its store.
"""
import hashlib
import json
import math
import struct
from typing import Dict, Mapping, Sequence, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from torch import Tensor

from .identity import CACHE_FORMAT, CacheError

#: storage dtypes of a store
DTYPES = {'float16': torch.float16, 'float32': torch.float32}
#: safetensors dtype codes -> torch names (for the messages; only DTYPES are ever read)
SAFETENSORS_DTYPES = {'F16': 'float16', 'F32': 'float32', 'F64': 'float64', 'BF16': 'bfloat16',
                      'I8': 'int8', 'U8': 'uint8', 'I16': 'int16', 'I32': 'int32',
                      'I64': 'int64', 'BOOL': 'bool'}
TENSOR = 'map'  # the one tensor of a single-map entry
METADATA = ('format', 'key', 'store', 'blake2b')  # its metadata, exactly
TENSOR_FIELDS = ('dtype', 'shape', 'data_offsets')
HEADER_LEN = struct.Struct('<Q')  # safetensors: little-endian u64 header length
MAX_HEADER = 4096  # bytes of an entry's JSON header (measured in the distiller guide)
MAX_DIM = 1 << 20  # one dimension of a stored map


def entry_checksum(store: str, key: str, shape, dtype: str, payload: bytes) -> str:
    """blake2b over what binds an entry (format, store identity hash, key, shape(s), dtype) and
    its bytes: an entry moved to another key or copied from another store fails it.

    ``shape``: the ``(C, h, w)`` of a single-map entry, or ``{tensor name: shape}`` of a
    pyramid entry (bound as ``[[name, shape], ...]`` in name order; ``payload`` is then the
    tensors' bytes in name order)."""
    if isinstance(shape, Mapping):
        shape = [[str(name), [int(d) for d in shape[name]]] for name in sorted(shape)]
    else:
        shape = [int(d) for d in shape]
    binding = json.dumps([CACHE_FORMAT, store, key, shape, dtype],
                         separators=(',', ':')).encode()
    digest = hashlib.blake2b(binding + b'\n', digest_size=16)
    digest.update(payload)
    return digest.hexdigest()


def encode_entry(data, key: str, store: str, **extra: str) -> bytes:
    """The safetensors bytes of the contiguous CPU map ``data`` (its dtype is the entry's), or
    of ``{tensor name: map}`` (a pyramid entry, one dtype), bound to ``key`` and ``store``;
    ``extra`` metadata only for tests of refusals."""
    if isinstance(data, Mapping):
        tensors = {str(name): data[name] for name in sorted(data)}
        shape = {name: list(t.shape) for name, t in tensors.items()}
    else:
        tensors, shape = {TENSOR: data}, list(data.shape)
    payload = b''.join(t.numpy().tobytes() for t in tensors.values())
    dtype = str(next(iter(tensors.values())).dtype).replace('torch.', '')
    metadata = dict(format=str(CACHE_FORMAT), key=key, store=store,
                    blake2b=entry_checksum(store, key, shape, dtype, payload), **extra)
    return safetensors_save(tensors, metadata=metadata)


def _schema_error(where: str, header: dict, names: Sequence[str]) -> CacheError:
    metadata = header.get('__metadata__')
    fields = set(metadata) if isinstance(metadata, dict) else set()
    tensors = sorted(str(k)[:40] for k in header if k != '__metadata__' and k not in names)
    unknown = sorted(str(f)[:40] for f in fields - set(METADATA))[:10] + tensors[:10]
    lacking = sorted(set(METADATA) - fields) + [n for n in names if n not in header]
    parts = ([f'unknown field(s) {unknown}'] if unknown else []) + \
        ([f'missing field(s) {lacking}'] if lacking else [])
    what = f'the tensor {names[0]!r}' if len(names) == 1 else f'the tensors {list(names)}'
    return CacheError(f'{where}: entry header is not of this cache format '
                      f'({"; ".join(parts) or "fields of the wrong type"}): an entry holds '
                      f'exactly {what} and the metadata {list(METADATA)}, and '
                      'nothing in it is built or run; refill the cache')


def _check_tensor(where: str, name: str, tensor: dict, store_dtype: str) -> Tuple[list, list]:
    """A tensor record's ``(shape, data_offsets)``, its fields, shape and dtype checked."""
    label = '' if name == TENSOR else f'tensor {name!r}: '
    if set(tensor) != set(TENSOR_FIELDS):
        raise CacheError(f'{where}: corrupt entry header (the metadata must be strings and '
                         f'the tensor exactly {list(TENSOR_FIELDS)})')
    shape, code, offsets = tensor['shape'], tensor['dtype'], tensor['data_offsets']
    if not (isinstance(shape, list) and len(shape) == 3 and
            all(type(d) is int and 0 < d <= MAX_DIM for d in shape)):
        raise CacheError(f'{where}: corrupt entry header ({label}shape {str(shape)[:80]} is '
                         f'not 3 positive ints <= {MAX_DIM})')
    if not (isinstance(offsets, list) and len(offsets) == 2 and
            all(type(d) is int for d in offsets) and isinstance(code, str)):
        raise CacheError(f'{where}: corrupt entry header ({label}dtype {str(code)[:20]!r}, '
                         f'data_offsets {str(offsets)[:80]})')
    dtype = SAFETENSORS_DTYPES.get(code, code)
    if dtype != store_dtype:
        raise CacheError(f'{where}: entry {label}dtype {dtype[:20]!r} is not the store\'s '
                         f'dtype {store_dtype!r}')
    return shape, offsets


def parse_header(where: str, value: bytes, store_dtype: str,
                 names: Sequence[str] = (TENSOR, )) -> Tuple[dict, int]:
    """An entry's header, parsed against the closed schema, and where its data begin: as
    ``dict(format, key, store, shape, dtype, blake2b)`` for the single map, with ``shapes``
    (``{name: shape}``) instead of ``shape`` for a pyramid entry.

    Args:
        where: the store and key, for the messages.
        value: the entry's bytes.
        store_dtype: the store's dtype.
        names: the store's tensor names (:func:`~.levels.entry_tensors`).

    Raises:
        CacheError: a header length beyond the value or :data:`MAX_HEADER`, a header that is
            not a JSON object of exactly the schema's fields (the tensors ``names`` and the
            metadata), another format, a shape that is not 3 positive ints, a dtype that is not
            ``store_dtype``, or byte ranges that do not tile the data, each its shape's size
            (names ``where`` and the tensor).
    """
    names = tuple(names)
    if len(value) < HEADER_LEN.size:
        raise CacheError(f'{where}: corrupt entry header (entry of {len(value)} bytes)')
    (n, ) = HEADER_LEN.unpack_from(value)
    if n > MAX_HEADER or HEADER_LEN.size + n > len(value):
        raise CacheError(f'{where}: corrupt entry header (header length {n}, entry of '
                         f'{len(value)} bytes, at most {MAX_HEADER})')
    try:
        header = json.loads(value[HEADER_LEN.size:HEADER_LEN.size + n].decode('utf-8'))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise CacheError(f'{where}: corrupt entry header (not JSON: {type(err).__name__}: '
                         f'{err})') from None
    if not isinstance(header, dict):
        raise CacheError(f'{where}: corrupt entry header (a JSON {type(header).__name__}, '
                         'not an object)')
    metadata = header.get('__metadata__')
    if set(header) != {'__metadata__', *names} or not isinstance(metadata, dict) or \
            set(metadata) != set(METADATA) or \
            not all(isinstance(header[name], dict) for name in names):
        raise _schema_error(where, header, names)
    if not all(isinstance(v, str) for v in metadata.values()):
        raise CacheError(f'{where}: corrupt entry header (the metadata must be strings and '
                         f'the tensor exactly {list(TENSOR_FIELDS)})')
    if metadata['format'] != str(CACHE_FORMAT):
        raise CacheError(f'{where}: entry format {metadata["format"][:12]!r}, this code reads '
                         f'format {CACHE_FORMAT}; refill the cache')
    ranges = {name: _check_tensor(where, name, header[name], store_dtype) for name in names}
    itemsize = DTYPES[store_dtype].itemsize
    end = 0
    for name in sorted(names, key=lambda k: ranges[k][1]):
        shape, offsets = ranges[name]
        nbytes = math.prod(shape) * itemsize
        if offsets != [end, end + nbytes]:
            label = '' if name == TENSOR else f'tensor {name!r}: '
            raise CacheError(f'{where}: corrupt entry header ({label}data_offsets {offsets}, '
                             f'expected [{end}, {end + nbytes}] for {tuple(shape)} '
                             f'{store_dtype})')
        end += nbytes
    parsed = dict(format=CACHE_FORMAT, key=metadata['key'], store=metadata['store'])
    if names == (TENSOR, ):
        parsed['shape'] = ranges[TENSOR][0]
    else:
        parsed['shapes'] = {name: ranges[name][0] for name in names}
    parsed.update(dtype=store_dtype, blake2b=metadata['blake2b'])
    parsed['offsets'] = {name: ranges[name][1] for name in names}
    return parsed, HEADER_LEN.size + n


def header_shapes(header: dict) -> Dict[str, tuple]:
    """``{tensor name: shape}`` of a parsed header (single map or pyramid)."""
    if 'shapes' in header:
        return {name: tuple(shape) for name, shape in header['shapes'].items()}
    return {TENSOR: tuple(header['shape'])}


def decode_levels(where: str, value: bytes, store_dtype: str,
                  names: Sequence[str] = (TENSOR, )) -> Tuple[Dict[str, Tensor], dict]:
    """``{tensor name: (C, h, w) map}`` of an entry and its checked header
    (:func:`parse_header`, without the byte ranges).

    Raises:
        CacheError: a header :func:`parse_header` refuses, data that are not exactly the
            tensors' bytes (a truncated entry) or that fail the checksum.
    """
    header, start = parse_header(where, value, store_dtype, names)
    offsets = header.pop('offsets')
    shapes = header_shapes(header)
    payload = value[start:]
    nbytes = sum(math.prod(s) for s in shapes.values()) * DTYPES[store_dtype].itemsize
    if len(payload) != nbytes:
        what = shapes[TENSOR] if TENSOR in shapes else shapes
        raise CacheError(f'{where}: truncated entry ({len(payload)} bytes, expected '
                         f'{nbytes} for {what} {store_dtype})')
    ordered = payload if len(shapes) == 1 else b''.join(
        payload[offsets[name][0]:offsets[name][1]] for name in sorted(shapes))
    shape = header['shape'] if 'shape' in header else header['shapes']
    if entry_checksum(header['store'], header['key'], shape, store_dtype, ordered) != \
            header['blake2b']:
        raise CacheError(f'{where}: checksum mismatch (corrupt entry)')
    try:
        loaded = safetensors_load(bytes(value))
    except SafetensorError as err:
        raise CacheError(f'{where}: corrupt entry ({err})') from None
    feats = {}
    for name, shape in shapes.items():
        feat = loaded.get(name)
        if feat is None or tuple(feat.shape) != shape or feat.dtype != DTYPES[store_dtype]:
            got = None if feat is None else (tuple(feat.shape), feat.dtype)
            raise CacheError(f'{where}: corrupt entry (decoded {name!r} as {got}, header '
                             f'{shape} {store_dtype})')
        feats[name] = feat
    return feats, header


def decode_entry(where: str, value: bytes, store_dtype: str) -> Tuple[Tensor, dict]:
    """The ``(C, h, w)`` map of a single-map entry and its checked header
    (:func:`decode_levels`)."""
    feats, header = decode_levels(where, value, store_dtype)
    return feats[TENSOR], header
