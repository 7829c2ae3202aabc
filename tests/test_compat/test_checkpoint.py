"""Checkpoints load through torch's weights-only unpickler; hostile files never run code.

Every hostile file is first shown to be real (full unpickling runs it, crashes or hangs), then
loaded by mmmimic's loader in a subprocess, so that a crash fails the test instead of pytest.
"""
import copyreg
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmmimic.testing.checkpoint_payloads import (MARKER_PAYLOADS, MEMORY_PAYLOADS, with_meta_entry,
                                                 deep_nesting, self_containing, shared_fan_out,
                                                 write_legacy_storage_claim,
                                                 write_newobj_object_array,
                                                 write_numpy_object_forgery,
                                                 write_torchscript_loop)
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mmmimic.compat.checkpoint import (TRUST_ENV, UnsafeCheckpointError, load_checkpoint_file,
                                       register_checkpoint_loader)

_LOADER = ('import json, os, sys\n'
           'from mmmimic.compat.checkpoint import load_checkpoint_file\n'
           'results = {}\n'
           'for path in sys.argv[1:]:\n'
           '    try:\n'
           '        load_checkpoint_file(path)\n'
           '        results[path] = {"loaded": True}\n'
           '    except Exception as e:\n'
           '        results[path] = {"loaded": False, "type": type(e).__name__, "msg": str(e)}\n'
           'print(json.dumps(results))\n')
_TRUSTED = ('import sys, torch\n'
            'for path in sys.argv[1:]:\n'
            '    try:\n'
            '        ckpt = torch.load(path, weights_only=False)\n'
            '        print(ckpt.get("rng_state", {}).get("numpy", [None, ""])[1])\n'
            '    except Exception as e:\n'
            '        print(type(e).__name__)\n')


def _run(code, paths, timeout):
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    return subprocess.run([sys.executable, '-c', code, *paths], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope='module')
def payloads(tmp_path_factory):
    """Every hostile file, the markers full unpickling created, and mmmimic's verdicts."""
    root = tmp_path_factory.mktemp('payloads')
    files = {}
    for name, write in MARKER_PAYLOADS.items():
        files[name] = (str(root / f'{name}.pth'), str(root / f'{name}.marker'))
        write(*files[name])
    forged, scripted = str(root / 'forged.pth'), str(root / 'scripted.pt')
    write_numpy_object_forgery(forged)
    write_torchscript_loop(scripted)

    # The payloads are real: full unpickling runs them, crashes, or hangs.
    _run(_TRUSTED, [path for path, _ in files.values()], timeout=120)
    ran = {name: osp.exists(marker) for name, (_, marker) in files.items()}
    for _, marker in files.values():
        if osp.exists(marker):
            os.remove(marker)
    crash = _run(_TRUSTED, [forged], timeout=120).returncode
    try:
        _run(_TRUSTED, [scripted], timeout=8)
        hung = False
    except subprocess.TimeoutExpired:
        hung = True

    proc = _run(_LOADER, [path for path, _ in files.values()] + [forged, scripted], timeout=300)
    assert proc.returncode == 0, f'loader process died ({proc.returncode}): {proc.stderr[-2000:]}'
    verdicts = json.loads(proc.stdout.strip().splitlines()[-1])
    return dict(files=files, ran=ran, crash=crash, hung=hung, verdicts=verdicts, forged=forged,
                scripted=scripted)


@pytest.mark.parametrize('name,offending', [
    ('legacy_reduce_first', 'posix.system'),
    ('legacy_stealth', 'GLOBAL eval'),
    ('zip_os_system', 'posix.system'),
    ('zip_eval', 'GLOBAL eval'),
    ('zip_getattr_chain', "getattr(_LoadedHistoryBuffer, '__init__')"),
])
def test_code_running_payloads_are_refused(payloads, name, offending):
    path, marker = payloads['files'][name]
    assert payloads['ran'][name], 'the payload must be real: full unpickling runs it'
    verdict = payloads['verdicts'][path]
    assert not osp.exists(marker)
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert f'{name}.pth' in verdict['msg'] and offending in verdict['msg']


def test_numpy_object_dtype_forgery_is_refused_not_a_crash(payloads):
    assert payloads['crash'] == -11  # real: numpy takes the bytes as pointers and segfaults
    verdict = payloads['verdicts'][payloads['forged']]
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert 'forged.pth' in verdict['msg'] and "numpy dtype '|V16'" in verdict['msg']


def test_torchscript_archive_is_refused_before_its_code_runs(payloads):
    assert payloads['hung']  # real: its __setstate__ never returns
    verdict = payloads['verdicts'][payloads['scripted']]
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert 'scripted.pt' in verdict['msg'] and 'TorchScript' in verdict['msg']


def _mmengine_like_checkpoint(path, custom_value=1.0):
    hub = MessageHub.get_instance(f'ckpt_compat_test_{osp.basename(path)}')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    hub.update_scalar('train/lr', np.float64(0.01))
    hub.update_info('iter', 7)
    ckpt = dict(
        meta=dict(seed=np.int64(3), iter=7, dataset_meta=dict(classes=('person', ))),
        message_hub=hub.state_dict(),
        state_dict=OrderedDict(w=torch.arange(4.)),
        optimizer={'state': {}, 'param_groups': [{'lr': 0.01, 'params': [0]}]},
        rng_state={'numpy': np.random.get_state()})
    torch.save(ckpt, path)
    return ckpt


def _check_mmengine_checkpoint(ckpt, reference):
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(4.))
    assert ckpt['meta']['seed'] == 3 and type(ckpt['meta']['seed']) is np.int64
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert type(buf) is HistoryBuffer
    assert buf.current() == pytest.approx(0.25) and buf.mean() == pytest.approx(0.375)
    assert buf.statistics('max') == pytest.approx(0.5)
    assert ckpt['message_hub']['runtime_info']['iter'] == 7
    state = ckpt['rng_state']['numpy']
    assert state[0] == 'MT19937' and type(state[1]) is np.ndarray
    assert np.array_equal(state[1], reference['rng_state']['numpy'][1])
    assert state[1].dtype == np.uint32


def test_mmengine_checkpoint_loads_through_mmengine(tmp_path):
    register_checkpoint_loader()
    path = str(tmp_path / 'ckpt.pth')
    reference = _mmengine_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the torch>=2.6 default this module works around
    _check_mmengine_checkpoint(_load_checkpoint(path, map_location='cpu'), reference)


def test_new_files_hold_no_getattr_and_need_only_torch_safe_globals(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert 'builtins.getattr' not in unsafe
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    numpy_globals = [np.core.multiarray._reconstruct, np.ndarray, np.dtype,
                     np.core.multiarray.scalar, type(np.dtype(np.uint32)),
                     type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    with torch.serialization.safe_globals([HistoryBuffer] + numpy_globals):
        plain = torch.load(path, weights_only=True)  # torch's loader, no mmmimic involved
    assert plain['message_hub']['log_scalars']['train/loss'].current() == pytest.approx(0.25)


def test_older_files_with_getattr_records_still_load(tmp_path):
    """Files written by mmengine without mmmimic's reducer pickle the statistics methods of
    every HistoryBuffer through ``getattr``; exactly those records pass."""
    path = str(tmp_path / 'old.pth')
    saved = copyreg.dispatch_table.pop(HistoryBuffer)
    try:
        reference = _mmengine_like_checkpoint(path)
    finally:
        copyreg.dispatch_table[HistoryBuffer] = saved
    assert 'builtins.getattr' in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    _check_mmengine_checkpoint(load_checkpoint_file(path), reference)


def test_model_zoo_checkpoint_loads(tmp_path):
    """mmdet/mmpretrain releases: state_dict + meta (strings, versions, class names)."""
    path = str(tmp_path / 'zoo.pth')
    torch.save({'state_dict': OrderedDict(weight=torch.ones(2, 2)),
                'meta': {'mmdet_version': '3.3.0', 'CLASSES': ('person', 'car'),
                         'config': 'model = dict(type="RPN")', 'epoch': 12, 'iter': 900}}, path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['CLASSES'] == ('person', 'car')
    assert torch.equal(ckpt['state_dict']['weight'], torch.ones(2, 2))


def test_legacy_format_checkpoint_loads(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    torch.save({'state_dict': OrderedDict(w=torch.arange(3.))}, path,
               _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'], torch.arange(3.))


def test_other_globals_are_refused_naming_file_and_global(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path = str(tmp_path / 'custom.pth')
    torch.save({'obj': OrderedDict, 'cls': pytest.approx}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'custom\.pth: Unsupported global: GLOBAL _pytest\.approx\.approx'):
        load_checkpoint_file(path)


def test_trusted_files_can_opt_out(tmp_path, monkeypatch):
    path = str(tmp_path / 'custom.pth')
    torch.save({'fn': os.path.join}, path)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UnsafeCheckpointError, match='custom.pth'):
        load_checkpoint_file(path)
    monkeypatch.setenv(TRUST_ENV, '1')
    assert load_checkpoint_file(path)['fn'] is os.path.join


@pytest.mark.parametrize('content', [b'model = dict(type="RPN")\n', b'', b'PK\x03\x04broken'])
def test_non_checkpoint_files_name_the_path(tmp_path, content):
    path = tmp_path / 'teacher.pth'
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=r'cannot read checkpoint .*teacher\.pth'):
        load_checkpoint_file(str(path))


def test_truncated_checkpoint_names_the_path(tmp_path):
    path = str(tmp_path / 'cut.pth')
    torch.save({'state_dict': OrderedDict(w=torch.zeros(1000))}, path)
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(RuntimeError, match=r'cannot read checkpoint .*cut\.pth'):
        load_checkpoint_file(path)


def test_missing_file_and_folder_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        load_checkpoint_file(str(tmp_path))


def test_loader_is_mmengines_local_scheme():
    import mmmimic  # noqa: F401
    assert CheckpointLoader._schemes[''].__module__ == 'mmmimic.compat.checkpoint'


# --- Records that crash, ask for memory, or make the walk explode -------------------------------

_TRUSTED_PROBE = ('import sys, torch\n'
                  'ckpt = torch.load(sys.argv[1], weights_only=False)\n'
                  'x = ckpt["meta"]["x"]\n'
                  'print(getattr(x, "nbytes", None) or len(x))\n'
                  'print(repr(x)[:40])\n')


def _verdict(path, timeout=120):
    proc = _run(_LOADER, [path], timeout=timeout)
    assert proc.returncode == 0, f'loader process died ({proc.returncode}): {proc.stderr[-2000:]}'
    return json.loads(proc.stdout.strip().splitlines()[-1])[path]


def test_newobj_object_array_is_refused_not_a_crash(tmp_path):
    path = str(tmp_path / 'newobj.pth')
    write_newobj_object_array(path)
    assert _run(_TRUSTED_PROBE, [path], timeout=120).returncode == -11  # real: a segfault
    verdict = _verdict(path)
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert f'refused to load checkpoint {path}' in verdict['msg']
    assert "refused numpy.ndarray.__new__((2,), 'O'" in verdict['msg']


@pytest.mark.parametrize('name,offending', [
    ('newobj_array_1gib', "refused numpy.ndarray.__new__((134217728,), 'f8')"),
    ('bytearray_1gib', 'refused __builtin__.bytearray(1073741824,) at byte'),
    ('float_tensor_1gib', 'refused torch.FloatTensor(268435456,) at byte'),
])
def test_records_asking_for_more_memory_than_the_file_holds_are_refused(tmp_path, name,
                                                                         offending):
    path = str(tmp_path / f'{name}.pth')
    with_meta_entry(path, MEMORY_PAYLOADS[name]())
    assert os.path.getsize(path) < 4096
    trusted = _run(_TRUSTED_PROBE, [path], timeout=120)
    assert int(trusted.stdout.splitlines()[0]) == 2**30  # real: 1 GiB from a few kB
    verdict = _verdict(path)
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert f'refused to load checkpoint {path}' in verdict['msg'] and offending in verdict['msg']


def test_legacy_storage_claiming_more_than_the_file_is_refused(tmp_path):
    path = str(tmp_path / 'claim.pth')
    write_legacy_storage_claim(path)
    verdict = _verdict(path)
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert '268435456 elements of torch.FloatStorage need 1073741824 bytes, more than the file ' \
           f'holds ({os.path.getsize(path)})' in verdict['msg']


def test_shared_references_are_walked_once(tmp_path):
    path = str(tmp_path / 'fan.pth')
    with_meta_entry(path, shared_fan_out())
    assert os.path.getsize(path) < 4096
    # a walk that follows every path visits 10**30 lists; plain torch.load reads it at once
    code = _LOADER.replace('load_checkpoint_file(path)',
                           'x = load_checkpoint_file(path)["meta"]["x"]; '
                           'assert x[0] is x[9] and x[0][0] is x[9][9]')
    proc = _run(code, [path], timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1])[path] == {'loaded': True}


def test_deep_nesting_is_refused_naming_the_file(tmp_path):
    path = str(tmp_path / 'deep.pth')
    sys.setrecursionlimit(20000)
    try:
        with_meta_entry(path, deep_nesting())
    finally:
        sys.setrecursionlimit(1000)
    verdict = _verdict(path)
    assert not verdict['loaded'] and verdict['type'] == 'UnsafeCheckpointError'
    assert f'refused to load checkpoint {path}: refused a record nested deeper than 200 ' \
           'levels' in verdict['msg']


def test_self_containing_list_loads(tmp_path):
    path = str(tmp_path / 'self.pth')
    with_meta_entry(path, self_containing())
    x = load_checkpoint_file(path)['meta']['x']
    assert x[0] == 1 and x[1] is x


def test_bit_flipped_storage_is_refused_naming_the_record(tmp_path):
    path = str(tmp_path / 'flipped.pth')
    torch.save({'state_dict': OrderedDict(w=torch.arange(1000.))}, path)
    data = bytearray(open(path, 'rb').read())
    at = data.index(torch.arange(1000.).numpy().tobytes()[400:408])
    data[at] ^= 1
    open(path, 'wb').write(bytes(data))
    assert torch.load(path, weights_only=True)['state_dict']['w'][100] != 100.  # real: accepted
    with pytest.raises(RuntimeError, match=f'cannot read checkpoint {path}: record '
                       r'flipped/data/0 fails its CRC-32 check'):
        load_checkpoint_file(path)
