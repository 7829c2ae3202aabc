"""An entry's bytes (mmmimic.teacher_cache.codec): safetensors with one tensor and closed
metadata; every bound is checked before the library decodes anything."""
import json

import pytest
import torch
from safetensors.torch import save

from mmmimic.teacher_cache import CacheError
from mmmimic.teacher_cache.codec import (HEADER_LEN, MAX_HEADER, decode_entry, encode_entry,
                                         entry_checksum)

WHERE = 'teacher cache /x/data.mdb, key \'k\''


def test_round_trip_is_exact_and_bound_to_key_and_store():
    feat = torch.randn(3, 4, 5).half()
    value = encode_entry(feat, 'k', 'store-hash')
    got, header = decode_entry(WHERE, value, 'float16')
    assert torch.equal(got, feat)
    assert header == dict(format=3, key='k', store='store-hash', shape=[3, 4, 5],
                          dtype='float16',
                          blake2b=entry_checksum('store-hash', 'k', [3, 4, 5], 'float16',
                                                 feat.numpy().tobytes()))
    n = HEADER_LEN.unpack_from(value)[0]
    assert json.loads(value[8:8 + n])['map'] == dict(dtype='F16', shape=[3, 4, 5],
                                                     data_offsets=[0, 120])


def test_a_header_beyond_the_bound_is_refused_before_it_is_read():
    value = HEADER_LEN.pack(MAX_HEADER + 1) + b'{' * (MAX_HEADER + 1)
    with pytest.raises(CacheError, match=r'corrupt entry header \(header length 4097, entry of '
                                         r'4105 bytes, at most 4096\)'):
        decode_entry(WHERE, value, 'float16')
    with pytest.raises(CacheError, match=r'corrupt entry header \(entry of 3 bytes\)'):
        decode_entry(WHERE, b'abc', 'float16')


META = dict(format='3', key='k', store='s', blake2b='b')


@pytest.mark.parametrize('tensors, metadata, words', [
    (dict(map=torch.zeros(1, 1, 1).half(), other=torch.zeros(1)), META,
     "unknown field(s) ['other']"),
    (dict(feat=torch.zeros(1, 1, 1).half()), META, "unknown field(s) ['feat']; missing "
                                                   "field(s) ['map']"),
    (dict(map=torch.zeros(1, 1, 1).half()), None,
     "missing field(s) ['blake2b', 'format', 'key', 'store']"),
    (dict(map=torch.zeros(1, 1, 1).half()), dict(META, code='print(1)'),
     "unknown field(s) ['code']"),
])
def test_other_tensors_and_metadata_are_refused(tensors, metadata, words):
    with pytest.raises(CacheError) as err:
        decode_entry(WHERE, save(tensors, metadata=metadata), 'float16')
    assert f'{WHERE}: entry header is not of this cache format ({words})' in str(err.value)


def test_shape_dtype_length_and_checksum_are_checked():
    feat = torch.ones(2, 2, 2).half()
    with pytest.raises(CacheError, match="entry dtype 'float32' is not the store's dtype "
                                         "'float16'"):
        decode_entry(WHERE, encode_entry(feat.float(), 'k', 's'), 'float16')
    with pytest.raises(CacheError, match=r'shape \[2, 2\] is not 3 positive ints'):
        decode_entry(WHERE, encode_entry(torch.ones(2, 2).half(), 'k', 's'), 'float16')
    value = encode_entry(feat, 'k', 's')
    with pytest.raises(CacheError, match=r'truncated entry \(15 bytes, expected 16'):
        decode_entry(WHERE, value[:-1], 'float16')
    with pytest.raises(CacheError, match='checksum mismatch'):
        decode_entry(WHERE, value[:-1] + b'\x01', 'float16')
    with pytest.raises(CacheError, match="entry format '2', this code reads format 3"):
        decode_entry(WHERE, save(dict(map=feat), metadata=dict(
            format='2', key='k', store='s', blake2b='b')), 'float16')
