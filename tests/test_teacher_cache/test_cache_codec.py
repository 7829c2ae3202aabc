"""An entry's bytes (mmmimic.teacher_cache.codec): safetensors with one tensor (or one per cached
pyramid level) and closed metadata; every bound is checked before the library decodes
anything."""
import json

import pytest
import torch
from safetensors.torch import save

from mmmimic.teacher_cache import CacheError
from mmmimic.teacher_cache.codec import (HEADER_LEN, MAX_HEADER, decode_entry, decode_levels,
                                         encode_entry, entry_checksum)

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


# ------------------------------------------------------------------ pyramid entries
LEVELS = ('level0', 'level2')


def pyramid_entry():
    return dict(level0=torch.randn(4, 6, 8).half(), level2=torch.randn(4, 2, 2).half())


def test_a_pyramid_entry_round_trips_one_tensor_per_level():
    maps = pyramid_entry()
    value = encode_entry(maps, 'k', 'store-hash')
    got, header = decode_levels(WHERE, value, 'float16', LEVELS)
    assert sorted(got) == list(LEVELS) and all(torch.equal(got[n], maps[n]) for n in LEVELS)
    payload = maps['level0'].numpy().tobytes() + maps['level2'].numpy().tobytes()
    assert header == dict(format=3, key='k', store='store-hash', dtype='float16',
                          shapes=dict(level0=[4, 6, 8], level2=[4, 2, 2]),
                          blake2b=entry_checksum('store-hash', 'k', dict(
                              level0=[4, 6, 8], level2=[4, 2, 2]), 'float16', payload))
    # the header of a 5-level float32 entry stays far below the bound
    five = {f'level{j}': torch.zeros(256, 200, 336 >> j) for j in range(5)}
    value = encode_entry(five, 'data/train/000000.jpg|horizontal|800x1333', 'e' * 64)
    assert HEADER_LEN.unpack_from(value)[0] < MAX_HEADER // 4


def crafted(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return HEADER_LEN.pack(len(raw)) + raw + payload


def good_header():
    return {'__metadata__': dict(META),
            'level0': dict(dtype='F16', shape=[4, 6, 8], data_offsets=[0, 384]),
            'level2': dict(dtype='F16', shape=[4, 2, 2], data_offsets=[384, 416])}


@pytest.mark.parametrize('change, words', [
    (lambda h: h.update(level1=h.pop('level2')),
     "entry header is not of this cache format (unknown field(s) ['level1']; missing field(s) "
     "['level2']): an entry holds exactly the tensors ['level0', 'level2']"),
    (lambda h: h.update(level3=dict(h['level2'])),
     "entry header is not of this cache format (unknown field(s) ['level3']): an entry holds "
     'exactly the tensors'),
    (lambda h: h['level2'].update(shape=[4, 4]),
     "corrupt entry header (tensor 'level2': shape [4, 4] is not 3 positive ints"),
    (lambda h: h['level2'].update(shape=[4, 2, 2, 1]),
     "corrupt entry header (tensor 'level2': shape [4, 2, 2, 1] is not 3 positive ints"),
    (lambda h: h['level2'].update(dtype='F32'),
     "entry tensor 'level2': dtype 'float32' is not the store's dtype 'float16'"),
    (lambda h: h['level2'].update(dtype='I8'),
     "entry tensor 'level2': dtype 'int8' is not the store's dtype 'float16'"),
    (lambda h: h['level2'].update(shape=[4, 3, 2]),
     "corrupt entry header (tensor 'level2': data_offsets [384, 416], expected [384, 432]"),
    (lambda h: h['level2'].update(data_offsets=[0, 32]),  # overlaps level0
     "corrupt entry header (tensor 'level0': data_offsets [0, 384], expected [32, 416]"),
    (lambda h: h['level0'].update(extra=1),
     'corrupt entry header (the metadata must be strings and the tensor exactly'),
])
def test_a_crafted_pyramid_header_is_refused_before_decoding(monkeypatch, change, words):
    """Real crafted bytes: the safetensors reader is never reached."""
    from mmmimic.teacher_cache import codec

    def never(*args):
        raise AssertionError('the entry reached the safetensors reader')

    monkeypatch.setattr(codec, 'safetensors_load', never)
    header = good_header()
    change(header)
    with pytest.raises(CacheError) as err:
        decode_levels(WHERE, crafted(header, bytes(416)), 'float16', LEVELS)
    assert f'{WHERE}: {words}' in str(err.value)


def test_a_level_read_as_another_level_fails_the_checksum():
    """Two levels of one shape, their names swapped in the header (the bytes unchanged): the
    checksum binds each level's bytes to its name."""
    maps = dict(level0=torch.randn(2, 3, 3).half(), level2=torch.randn(2, 3, 3).half())
    value = encode_entry(maps, 'k', 's')
    n = HEADER_LEN.unpack_from(value)[0]
    header = json.loads(value[8:8 + n])
    header['level0'], header['level2'] = header['level2'], header['level0']
    with pytest.raises(CacheError, match='checksum mismatch'):
        decode_levels(WHERE, crafted(header, value[8 + n:]), 'float16', LEVELS)
    assert torch.equal(decode_levels(WHERE, value, 'float16', LEVELS)[0]['level2'],
                       maps['level2'])
