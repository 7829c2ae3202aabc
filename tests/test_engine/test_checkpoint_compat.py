"""torch>=2.6 ``weights_only`` default vs mmengine checkpoints: load safely, refuse the rest."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from mmmimic.engine.checkpoint_compat import TRUST_ENV, load_checkpoint_file


def _mmengine_like_checkpoint(path):
    hub = MessageHub.get_instance('ckpt_compat_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/lr', np.float64(0.01))
    hub.update_info('iter', 7)
    ckpt = dict(
        meta=dict(seed=np.int64(3), iter=7, dataset_meta=dict(classes=('person', ))),
        message_hub=hub.state_dict(),
        state_dict={'w': torch.arange(4.)},
        optimizer={'state': {}, 'param_groups': [{'lr': 0.01, 'params': [0]}]},
        rng_state={'numpy': np.random.get_state()})
    torch.save(ckpt, path)


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo should-not-run', ))


def test_plain_torch_load_fails_on_mmengine_checkpoints(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the torch>=2.6 default this module works around


def test_mmengine_checkpoint_loads_through_mmengine(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    ckpt = _load_checkpoint(path, map_location='cpu')  # mmengine's own entry point
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(4.))
    assert ckpt['meta']['seed'] == 3 and ckpt['meta']['iter'] == 7
    buf = ckpt['message_hub']['log_scalars']['train/lr']
    assert buf.current() == pytest.approx(0.01)
    assert ckpt['message_hub']['runtime_info']['iter'] == 7
    assert ckpt['rng_state']['numpy'][0] == 'MT19937'


def test_arbitrary_globals_are_refused_with_the_file_name(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match=r'evil\.pth.*posix\.system|evil\.pth'):
        load_checkpoint_file(path)


def test_trusted_files_can_opt_out(tmp_path, monkeypatch):
    path = str(tmp_path / 'custom.pth')
    torch.save({'obj': {1, 2}, 'cls': complex(1, 2)}, path)  # set/complex are not allow-listed
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(pickle.UnpicklingError, match='custom.pth'):
        load_checkpoint_file(path)
    monkeypatch.setenv(TRUST_ENV, '1')
    assert load_checkpoint_file(path)['obj'] == {1, 2}


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
