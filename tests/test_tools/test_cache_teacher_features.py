"""tools/cache_teacher_features.py: fills, prints the estimate, resumes, refuses a pipeline that
differs from the training pipeline and an estimate beyond max_gb (nothing written); refuses a
target it must not write into (an LMDB it did not create, another teacher's cache without
--overwrite, a symlinked store file) and names a full disk instead of crashing."""
import importlib.util
import os
import os.path as osp
import shlex
import subprocess
import sys

import lmdb
import pytest
import torch

from mmdet.registry import MODELS
from mmmimic.teacher_cache import CacheError
from mmmimic.testing import checkout_env
from mmmimic.testing.tiny_mimic import CACHE_PIPELINE, MIMIC_CFG, make_teacher_ckpt

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

PIPELINE = CACHE_PIPELINE


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'cache_teacher_features', osp.join(REPO, 'tools', 'cache_teacher_features.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(path, tiny_coco, ckpt, cache_dir, cache_pipeline=PIPELINE, max_gb=1.0):
    path.write_text(
        f'_base_ = [{MIMIC_CFG!r}]\n'
        f'train_pipeline = {PIPELINE!r}\n'
        f'train_dataloader = dict(dataset=dict(data_root={tiny_coco!r}, '
        f'pipeline=train_pipeline))\n'
        f'model = dict(teacher_ckpt={ckpt!r}, teacher_cache=dict(dir={str(cache_dir)!r}, '
        f'pipeline={cache_pipeline!r}, max_gb={max_gb!r}))\n')
    return str(path)


def test_cli_fills_resumes_and_the_model_opens_it(tmp_path, tiny_coco, capsys):
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    config = write_config(tmp_path / 'cfg.py', tiny_coco, ckpt, tmp_path / 'cache')
    stats = tool.main([config, '--no-progress', '--device', 'cpu'])
    out = capsys.readouterr().out
    # 16 images x 2 flip states; 64 channels x 6 x 8 cells x 2 bytes = 6144 bytes each
    assert (stats['entries'], stats['written'], stats['skipped']) == (32, 32, 0)
    assert '32 entries (2 augmentation state(s) x 16 images), (64, 6, 8) float16' in out
    assert f'estimate {32 * 6144 / 2**30:.3f} GiB (max_gb 1.0)' in out
    stats = tool.main([config, '--no-progress', '--device', 'cpu'])
    assert (stats['written'], stats['skipped']) == (0, 32)
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(config).model)
    assert model.teacher_cache.complete and len(model.teacher_cache.keys()) == 32
    assert model.teacher_cache.get(model.teacher_cache.keys()[0]).dtype == torch.float16


def test_cli_refuses_mismatched_pipeline_and_oversize(tmp_path, tiny_coco):
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    other = [dict(t) for t in PIPELINE]
    other[3] = dict(type='RandomFlip', prob=1.0)
    config = write_config(tmp_path / 'a.py', tiny_coco, ckpt, tmp_path / 'a', other)
    with pytest.raises(ValueError, match='teacher_cache.pipeline differs from '
                                         'train_dataloader.dataset.pipeline'):
        tool.main([config, '--no-progress', '--device', 'cpu'])
    config = write_config(tmp_path / 'b.py', tiny_coco, ckpt, tmp_path / 'b', max_gb=1e-5)
    with pytest.raises(CacheError, match='exceeds max_gb=1e-05'):
        tool.main([config, '--no-progress', '--device', 'cpu'])
    env = lmdb.open(str(tmp_path / 'b'), readonly=True, lock=False)
    with env.begin() as txn:
        assert [k for k, _ in txn.cursor()] == [b'__identity__']  # no entry written


# ------------------------------------------------------------------ the target (issue #24)
def lmdb_records(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        records = dict(txn.cursor())
    env.close()
    return records


def test_cli_refuses_to_write_into_an_lmdb_it_did_not_create(tmp_path, tiny_coco):
    """A folder holding someone else's LMDB: the previous tool added its 66 records (32 entries,
    32 fill markers, identity, completion) to it. Refused, with or without --overwrite, and
    the LMDB is left byte for byte as it was."""
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    target = tmp_path / 'user_lmdb'
    env = lmdb.open(str(target), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(3):
            txn.put(f'user/{i}'.encode(), f'precious {i}'.encode())
    env.close()
    before = lmdb_records(target)
    config = write_config(tmp_path / 'cfg.py', tiny_coco, ckpt, target)
    for extra in ([], ['--overwrite']):
        with pytest.raises(CacheError) as err:
            tool.main([config, '--no-progress', '--device', 'cpu'] + extra)
        assert (f'{target} holds an LMDB that is not a teacher cache ({target}/data.mdb: 3 '
                'records, no identity record); refusing to write into it') in str(err.value)
        assert lmdb_records(target) == before
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'cache_teacher_features.py'),
                           config, '--no-progress', '--device', 'cpu'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f'cache_teacher_features.py: {target} holds an LMDB that is not a teacher cache')
    assert lmdb_records(target) == before


def test_cli_refuses_another_teachers_cache_unless_overwrite(tmp_path, tiny_coco):
    tool = load_tool()
    ckpt_a = make_teacher_ckpt(str(tmp_path / 'a.pth'))
    state = torch.load(ckpt_a, weights_only=True)
    state['meta'] = {'note': 'another teacher'}
    ckpt_b = str(tmp_path / 'b.pth')
    torch.save(state, ckpt_b)
    target = tmp_path / 'cache'
    config_a = write_config(tmp_path / 'a.py', tiny_coco, ckpt_a, target)
    config_b = write_config(tmp_path / 'b.py', tiny_coco, ckpt_b, target)
    assert tool.main([config_a, '--no-progress', '--device', 'cpu'])['written'] == 32
    before = lmdb_records(target)
    with pytest.raises(CacheError) as err:
        tool.main([config_b, '--no-progress', '--device', 'cpu'])
    assert (f'teacher cache {target}/data.mdb is stale: it was filled for another '
            'teacher_checkpoint') in str(err.value)
    assert 'pass --overwrite (tools/cache_teacher_features.py) to replace it' in str(err.value)
    assert lmdb_records(target) == before
    stats = tool.main([config_b, '--no-progress', '--device', 'cpu', '--overwrite'])
    assert (stats['written'], stats['skipped']) == (32, 0)
    after = lmdb_records(target)
    assert len(after) == len(before) == 66 and after[b'__identity__'] != before[b'__identity__']


@pytest.mark.parametrize('name', ['lock.mdb', 'data.mdb'])
def test_cli_refuses_a_symlinked_store_file(tmp_path, tiny_coco, name):
    """A planted symlink in the target folder: LMDB would open (and for lock.mdb truncate and
    rewrite) the file it points to."""
    tool = load_tool()
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    target = tmp_path / 'cache'
    target.mkdir()
    precious = tmp_path / 'precious.txt'
    precious.write_bytes(b'the user\'s file\n' * 100)
    os.symlink(precious, target / name)
    config = write_config(tmp_path / 'cfg.py', tiny_coco, ckpt, target)
    with pytest.raises(CacheError) as err:
        tool.main([config, '--no-progress', '--device', 'cpu', '--overwrite'])
    assert f'teacher cache {target}/{name} is a symlink or not a regular file; refusing to ' \
           'write through it' in str(err.value)
    assert precious.read_bytes() == b'the user\'s file\n' * 100


# ------------------------------------------------------------------ a full disk
def small_disks_available():
    """A private mount namespace (unshare -rm) where a tiny tmpfs can be mounted."""
    try:
        return subprocess.run(['unshare', '-rm', 'true'], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def on_small_disk(mount, size, argv, timeout=300):
    """Run ``argv`` with a ``size`` tmpfs mounted at ``mount`` (only this process sees it)."""
    os.makedirs(mount, exist_ok=True)
    cmd = (f'mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mount))} && exec ' +
           ' '.join(shlex.quote(str(a)) for a in argv))
    env = checkout_env()  # this checkout's mmmimic first
    return subprocess.run(['unshare', '-rm', 'sh', '-c', cmd], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


FULL_DISK_JOB = '''
import os, sys
import torch
from mmmimic.teacher_cache import CacheError, TeacherFeatureCache
mount, phase = {mount!r}, sys.argv[1]
if phase == 'full':  # nothing left before the store is opened
    try:
        with open(os.path.join(mount, 'filler'), 'wb') as f:
            while True:
                f.write(b'\\0' * 4096)
    except OSError:
        pass
try:
    cache = TeacherFeatureCache(os.path.join(mount, 'cache'), dict(hash='h'), readonly=False)
    for i in range(10000):
        cache.put(f'img{{i}}.jpg|none|96x128', torch.ones(64, 6, 8))
except CacheError as err:
    print('REFUSED:', err)
    sys.exit(3)
'''


@pytest.mark.skipif(not small_disks_available(), reason='needs unshare -rm to mount a tmpfs')
def test_a_full_disk_is_named_not_a_crash(tmp_path, tiny_coco):
    """A real full file system (a private tmpfs). Full before the store is opened: LMDB maps
    its lock file and the previous code died of SIGBUS; full while writing: lmdb.DiskError
    without the store's name; the tool also refuses up front when the estimate does not fit."""
    mount = tmp_path / 'disk'
    script = tmp_path / 'job.py'
    script.write_text(FULL_DISK_JOB.format(mount=str(mount)))
    proc = on_small_disk(mount, '512k', [sys.executable, script, 'full'])
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert f'REFUSED: disk full: 0 bytes free on {mount}/cache; the teacher cache ' \
           f'{mount}/cache/data.mdb needs room' in proc.stdout
    proc = on_small_disk(mount, '1100k', [sys.executable, script, 'writing'])
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert f'REFUSED: teacher cache {mount}/cache/data.mdb, key ' in proc.stdout
    assert '|none|96x128\': disk full (' in proc.stdout
    assert f'bytes free on {mount}/cache): write failed (mdb_txn_commit: No space left on ' \
           'device)' in proc.stdout
    ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    config = write_config(tmp_path / 'cfg.py', tiny_coco, ckpt, mount / 'cache')
    proc = on_small_disk(mount, '1200k', [
        sys.executable, osp.join(REPO, 'tools', 'cache_teacher_features.py'), config,
        '--no-progress', '--device', 'cpu'])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert f'cache_teacher_features.py: disk full: the teacher cache {mount}/cache/data.mdb ' \
           'needs about 0.001 GiB more, 0.001 GiB free on' in proc.stderr
