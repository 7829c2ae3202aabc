"""One cache entry as bytes: a safetensors file holding one tensor ``'map'`` and the string
metadata ``format``, ``key``, ``store`` and ``blake2b``.

Safetensors (https://huggingface.co/docs/safetensors) is self-describing (dtype, shape and byte
offsets in a JSON header) and its reader never executes anything. An entry is still untrusted
data, so before the library reads it :func:`decode_entry` bounds the header length by the value's
length and by :data:`MAX_HEADER`, parses the header against a closed schema (exactly that tensor
and that metadata; nothing in it is built or run), checks the dtype against the store's, the
shape (3 positive ints, each at most :data:`MAX_DIM`) and that the data bytes are exactly the
shape's size. The blake2b checksum covers the format, the store's identity hash, the key, the
shape, the dtype and the bytes, so an entry is bound to its key and to its store.
"""
import hashlib
import json
import math
import struct
from typing import Sequence, Tuple

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
TENSOR = 'map'  # the one tensor of an entry
METADATA = ('format', 'key', 'store', 'blake2b')  # its metadata, exactly
TENSOR_FIELDS = ('dtype', 'shape', 'data_offsets')
HEADER_LEN = struct.Struct('<Q')  # safetensors: little-endian u64 header length
MAX_HEADER = 4096  # bytes of an entry's JSON header (a real one is ~250)
MAX_DIM = 1 << 20  # one dimension of a stored map


def entry_checksum(store: str, key: str, shape: Sequence[int], dtype: str,
                   payload: bytes) -> str:
    """blake2b over what binds an entry (format, store identity hash, key, shape, dtype) and
    its bytes: an entry moved to another key or copied from another store fails it."""
    binding = json.dumps([CACHE_FORMAT, store, key, [int(d) for d in shape], dtype],
                         separators=(',', ':')).encode()
    digest = hashlib.blake2b(binding + b'\n', digest_size=16)
    digest.update(payload)
    return digest.hexdigest()


def encode_entry(data: Tensor, key: str, store: str, **extra: str) -> bytes:
    """The safetensors bytes of the contiguous CPU map ``data`` (its dtype is the entry's),
    bound to ``key`` and ``store``; ``extra`` metadata only for tests of refusals."""
    payload = data.numpy().tobytes()
    dtype = str(data.dtype).replace('torch.', '')
    metadata = dict(format=str(CACHE_FORMAT), key=key, store=store,
                    blake2b=entry_checksum(store, key, list(data.shape), dtype, payload), **extra)
    return safetensors_save({TENSOR: data}, metadata=metadata)


def _schema_error(where: str, header: dict) -> CacheError:
    metadata = header.get('__metadata__')
    names = set(metadata) if isinstance(metadata, dict) else set()
    tensors = sorted(str(k)[:40] for k in header if k not in ('__metadata__', TENSOR))
    unknown = sorted(str(f)[:40] for f in names - set(METADATA))[:10] + tensors[:10]
    lacking = sorted(set(METADATA) - names) + ([TENSOR] if TENSOR not in header else [])
    parts = ([f'unknown field(s) {unknown}'] if unknown else []) + \
        ([f'missing field(s) {lacking}'] if lacking else [])
    return CacheError(f'{where}: entry header is not of this cache format '
                      f'({"; ".join(parts) or "fields of the wrong type"}): an entry holds '
                      f'exactly the tensor {TENSOR!r} and the metadata {list(METADATA)}, and '
                      'nothing in it is built or run; refill the cache')


def parse_header(where: str, value: bytes, store_dtype: str) -> Tuple[dict, int]:
    """An entry's header, parsed against the closed schema, as ``dict(format, key, store,
    shape, dtype, blake2b)``, and where its data begin.

    Raises:
        CacheError: a header length beyond the value or :data:`MAX_HEADER`, a header that is
            not a JSON object of exactly the schema's fields, another format, a shape that is
            not 3 positive ints, or a dtype that is not ``store_dtype`` (names ``where``).
    """
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
    metadata, tensor = header.get('__metadata__'), header.get(TENSOR)
    if set(header) != {'__metadata__', TENSOR} or not isinstance(metadata, dict) or \
            set(metadata) != set(METADATA) or not isinstance(tensor, dict):
        raise _schema_error(where, header)
    if set(tensor) != set(TENSOR_FIELDS) or \
            not all(isinstance(v, str) for v in metadata.values()):
        raise CacheError(f'{where}: corrupt entry header (the metadata must be strings and '
                         f'the tensor exactly {list(TENSOR_FIELDS)})')
    if metadata['format'] != str(CACHE_FORMAT):
        raise CacheError(f'{where}: entry format {metadata["format"][:12]!r}, this code reads '
                         f'format {CACHE_FORMAT}; refill the cache')
    shape, code, offsets = tensor['shape'], tensor['dtype'], tensor['data_offsets']
    if not (isinstance(shape, list) and len(shape) == 3 and
            all(type(d) is int and 0 < d <= MAX_DIM for d in shape)):
        raise CacheError(f'{where}: corrupt entry header (shape {str(shape)[:80]} is not 3 '
                         f'positive ints <= {MAX_DIM})')
    if not (isinstance(offsets, list) and len(offsets) == 2 and
            all(type(d) is int for d in offsets) and isinstance(code, str)):
        raise CacheError(f'{where}: corrupt entry header (dtype {str(code)[:20]!r}, '
                         f'data_offsets {str(offsets)[:80]})')
    dtype = SAFETENSORS_DTYPES.get(code, code)
    if dtype != store_dtype:
        raise CacheError(f'{where}: entry dtype {dtype[:20]!r} is not the store\'s dtype '
                         f'{store_dtype!r}')
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets != [0, nbytes]:
        raise CacheError(f'{where}: corrupt entry header (data_offsets {offsets}, expected '
                         f'[0, {nbytes}] for {tuple(shape)} {dtype})')
    return dict(format=CACHE_FORMAT, key=metadata['key'], store=metadata['store'],
                shape=shape, dtype=dtype, blake2b=metadata['blake2b']), HEADER_LEN.size + n


def decode_entry(where: str, value: bytes, store_dtype: str) -> Tuple[Tensor, dict]:
    """The ``(C, h, w)`` map of an entry and its checked header (:func:`parse_header`).

    Raises:
        CacheError: a header :func:`parse_header` refuses, data that are not exactly the
            shape's bytes (a truncated entry) or that fail the checksum.
    """
    header, start = parse_header(where, value, store_dtype)
    shape, dtype = tuple(header['shape']), header['dtype']
    payload = value[start:]
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if len(payload) != nbytes:
        raise CacheError(f'{where}: truncated entry ({len(payload)} bytes, expected '
                         f'{nbytes} for {shape} {dtype})')
    if entry_checksum(header['store'], header['key'], shape, dtype, payload) != \
            header['blake2b']:
        raise CacheError(f'{where}: checksum mismatch (corrupt entry)')
    try:
        feat = safetensors_load(bytes(value))[TENSOR]
    except SafetensorError as err:
        raise CacheError(f'{where}: corrupt entry ({err})') from None
    if tuple(feat.shape) != shape or feat.dtype != DTYPES[dtype]:
        raise CacheError(f'{where}: corrupt entry (decoded {tuple(feat.shape)} {feat.dtype}, '
                         f'header {shape} {dtype})')
    return feat, header
