"""A teacher cache written by the previous code (format 2: a hand-packed JSON header and raw bytes
per entry; tests/data/teacher_cache_format2, written by that code) is refused at open with the
command that rebuilds it, for training and for the fill tool; --overwrite rebuilds it."""
import os.path as osp
import shutil

import pytest
import torch

from mmmimic.teacher_cache import CACHE_FORMAT, CacheError, TeacherFeatureCache

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
