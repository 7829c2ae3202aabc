"""A teacher cache written by the previous code (format 2: a hand-packed JSON header and raw bytes
per entry; tests/data/teacher_cache_format2, written by that code) is refused at open with the
command that rebuilds it, for training and for the fill tool; --overwrite rebuilds it. A
single-map format-3 store written before the cache held pyramid levels
(tests/data/teacher_cache_format3) still serves."""
import json
import os.path as osp
import shutil

import pytest
import torch

from mmmimic.teacher_cache import CACHE_FORMAT, CacheError, TeacherFeatureCache
from mmmimic.teacher_cache.codec import HEADER_LEN

FIXTURE = osp.join(osp.dirname(__file__), '..', 'data', 'teacher_cache_format2')


@pytest.fixture
def old_store(tmp_path):
    dst = tmp_path / 'old'
    shutil.copytree(FIXTURE, dst)
    return str(dst)


def current_identity():
    identity = dict(format=str(CACHE_FORMAT), teacher_config='a' * 64,
                    teacher_checkpoint='b' * 64, teacher_feature='-1',
                    normalisation='c' * 64, pipeline='d' * 64, dtype='float16')
    return dict(identity, hash='e' * 64)


def test_a_format_2_store_is_refused_with_the_command_that_rebuilds_it(old_store):
    assert CACHE_FORMAT == 3
    with pytest.raises(CacheError) as err:
        TeacherFeatureCache(old_store, current_identity())
    message = str(err.value)
    assert f"teacher cache {old_store}/data.mdb was written in cache format '2'; this code " \
           "reads format '3' only" in message
    assert 'rebuild it with python tools/cache_teacher_features.py CONFIG (into a new ' \
           'teacher_cache.dir, or with --overwrite)' in message


def test_the_fill_tool_refuses_it_without_overwrite_and_rebuilds_it_with(old_store):
    with pytest.raises(CacheError) as err:
        TeacherFeatureCache(old_store, current_identity(), readonly=False)
    assert "was written in cache format '2'" in str(err.value)
    assert '; pass --overwrite (tools/cache_teacher_features.py) to replace it' in str(err.value)
    writer = TeacherFeatureCache(old_store, current_identity(), readonly=False, overwrite=True)
    writer.put('data/train/000000.jpg|none|32x48', torch.ones(4, 2, 3))
    writer.mark_complete(1)
    writer.close()
    reader = TeacherFeatureCache(old_store, current_identity())
    assert reader.keys() == ['data/train/000000.jpg|none|32x48']
    assert torch.equal(reader.get('data/train/000000.jpg|none|32x48'),
                       torch.ones(4, 2, 3, dtype=torch.float16))
    assert reader.header('data/train/000000.jpg|none|32x48')['format'] == 3
    reader.close()


def test_a_format_2_entry_under_a_current_identity_is_refused_not_decoded(old_store, tmp_path):
    """Its entry bytes alone (the 4-byte header length of format 2 read as safetensors' 8-byte
    one) are refused as a corrupt header, naming the key: nothing past the bound is read."""
    import lmdb
    env = lmdb.open(old_store, readonly=True, lock=False)
    with env.begin() as txn:
        old_value = txn.get(b'data/train/000000.jpg|none|32x48')
    env.close()
    writer = TeacherFeatureCache(str(tmp_path / 'new'), current_identity(), readonly=False)
    writer._raw_put(b'data/train/000000.jpg|none|32x48', old_value)
    with pytest.raises(CacheError) as err:
        writer.get('data/train/000000.jpg|none|32x48')
    assert f"teacher cache {tmp_path}/new/data.mdb, key 'data/train/000000.jpg|none|32x48': " \
           'corrupt entry header (header length ' in str(err.value)
    writer.close()


FORMAT3 = osp.join(osp.dirname(__file__), '..', 'data', 'teacher_cache_format3')
KEY = 'data/train/000000.jpg|none|32x48'


def test_a_single_map_format_3_store_of_the_previous_code_still_serves(tmp_path):
    """A format-3 store written before the cache held pyramid levels (tests/data/
    teacher_cache_format3): its identity hash is what this code computes for the same
    components, its entry decodes to the same map, and this code writes that entry as the
    previous code did (the same header, checksum included, and data bytes; safetensors orders
    the metadata keys differently from one process to the next)."""
    import lmdb

    from mmmimic.teacher_cache.identity import sha256_of
    store = str(tmp_path / 'v3')
    shutil.copytree(FORMAT3, store)
    identity = dict(current_identity())
    identity.pop('hash')
    identity['hash'] = sha256_of(identity)
    reader = TeacherFeatureCache(store, identity)
    assert reader.tensors == ('map', ) and reader.complete and reader.keys() == [KEY]
    expected = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0)).half()
    assert torch.equal(reader.get(KEY), expected)
    assert reader.header(KEY)['shape'] == [4, 2, 3]
    reader.close()
    env = lmdb.open(store, readonly=True, lock=False)
    with env.begin() as txn:
        old_value = txn.get(KEY.encode())
    env.close()
    writer = TeacherFeatureCache(str(tmp_path / 'now'), identity, readonly=False)
    writer.put(KEY, expected)
    new_value = writer._raw_get(KEY.encode())
    writer.close()

    def split(value):
        n = HEADER_LEN.unpack_from(value)[0]
        return json.loads(value[8:8 + n]), value[8 + n:]

    assert split(new_value) == split(old_value)
    assert len(new_value) == len(old_value)
