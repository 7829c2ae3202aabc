"""The vtest study's ``--device`` flag (``auto`` / ``cpu`` / ``cuda`` / ``cuda:N``): resolved
once, refused without CUDA, carried into every stage's Runner and the cache fill, never into a
stage's config (its stamp); and the GPU check's refusal on a machine without CUDA."""
import json
import os.path as osp
import subprocess
import sys

import mmengine.device.utils as device_utils
import pytest
import torch
from mmengine.device import get_device

import mmmimic.teacher_cache
from projects.vtest_mimic.tools import gpu_check as gpu_check_tool
from projects.vtest_mimic.vtest_mimic import gpu_check
from projects.vtest_mimic.vtest_mimic.device import resolve_device, use_device
from projects.vtest_mimic.vtest_mimic.job import MainJob
from projects.vtest_mimic.vtest_mimic.models import BY_NAME
from projects.vtest_mimic.vtest_mimic.options import parse_args


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without CUDA (also where a GPU is present)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


class Built(Exception):
    """Raised by the fake Runner once it has seen the device it was built under."""


def test_resolve_device(no_cuda):
    assert resolve_device('auto') == resolve_device(None) == 'cpu'
    assert resolve_device('CPU') == 'cpu'
    for name in ('cuda', 'cuda:0'):
        with pytest.raises(ValueError, match=rf'^--device {name}: torch.cuda.is_available\(\) '
                           r'is False on this machine .*; use --device cpu or auto$'):
            resolve_device(name)
    with pytest.raises(ValueError, match='--device tpu: not one of auto, cpu, cuda, cuda:N'):
        resolve_device('tpu')


def test_resolve_device_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert resolve_device('auto') == 'cuda'
    assert resolve_device('cuda:1') == 'cuda:1'
    with pytest.raises(ValueError, match='--device cuda:2: this machine has 2 CUDA device'):
        resolve_device('cuda:2')


def test_the_flag_defaults_to_auto_and_refuses_cuda_in_one_line(no_cuda, tmp_path, capsys):
    assert parse_args(['--out', str(tmp_path)]).device == 'cpu'
    assert parse_args(['--out', str(tmp_path), '--device', 'cpu']).device == 'cpu'
    with pytest.raises(SystemExit) as exc:
        parse_args(['--out', str(tmp_path), '--device', 'cuda'])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(': error: --device cuda: torch.cuda.is_available() is False on this '
                            f'machine (torch {torch.__version__}); use --device cpu or auto')


def test_use_device_points_mmengine_at_the_device(monkeypatch):
    monkeypatch.setattr(device_utils, 'DEVICE', 'cuda')  # as on a GPU machine
    with use_device('cpu'):
        assert get_device() == 'cpu'
    assert get_device() == 'cuda'
    monkeypatch.setattr(device_utils, 'DEVICE', 'cpu')
    with pytest.raises(Built):
        with use_device('cuda'):
            assert get_device() == 'cuda'
            raise Built
    assert get_device() == 'cpu'


@pytest.mark.parametrize('device', ['cpu', 'cuda'])
def test_the_device_reaches_every_stage(device, no_cuda, monkeypatch, tmp_path):
    """Training and scoring build their Runner under the job's device, the cache fill gets it
    as its ``device=``; the stage's config (and so its stamp) is the same on every device."""
    from mmengine.runner import Runner
    job = MainJob(parse_args(['--out', str(tmp_path), '--quick', '--device', 'cpu']))
    cpu_cfg = job.config_of(BY_NAME['xs-scratch-1-2'], 0).pretty_text
    job.device = device  # what --device cuda resolves to on a GPU machine
    monkeypatch.setattr(device_utils, 'DEVICE', 'cuda' if device == 'cpu' else 'cpu')
    seen = []

    def from_cfg(cfg):
        seen.append(get_device())
        raise Built

    monkeypatch.setattr(Runner, 'from_cfg', staticmethod(from_cfg))
    student = BY_NAME['xs-scratch-1-2']
    assert job.config_of(student, 0).pretty_text == cpu_cfg
    with pytest.raises(Built):
        job.train(student, 0)
    job.ckpts['xs-scratch-1-2@0'] = 'iter_1.pth'
    with pytest.raises(Built):
        job.evaluate(student, 0, 'test')
    assert seen == [device, device]
    calls = {}

    def fill(cfg, **kwargs):
        calls.update(kwargs)
        return {}

    monkeypatch.setattr(mmmimic.teacher_cache, 'fill_cache_from_config', fill)
    job.ckpts['teacher@0'] = 'teacher.pth'
    job.fill_cache()
    assert calls['device'] == device


def test_the_eta_keeps_each_device_s_times_apart(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    job = MainJob(parse_args(['--out', str(tmp_path), '--quick']))
    assert job.eta.path == osp.join(str(tmp_path), 'timings.json')  # the CPU file as before
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # a GPU machine
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    job = MainJob(parse_args(['--out', str(tmp_path), '--quick', '--device', 'cuda:1']))
    assert job.device == 'cuda:1'
    assert job.eta.path == osp.join(str(tmp_path), 'timings_cuda.json')


def test_gpu_check_refuses_without_cuda_before_anything_else(no_cuda, monkeypatch, tmp_path,
                                                             capsys):
    monkeypatch.setattr(gpu_check.subprocess, 'call', lambda *a, **k: pytest.fail('ran'))
    out = tmp_path / 'check'
    assert gpu_check_tool.main(['--out', str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('gpu_check: no CUDA device')
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal needs a machine without CUDA')
def test_gpu_check_command_exits_2_here(repo_root, tmp_path):
    out = tmp_path / 'check'
    proc = subprocess.run([sys.executable, '-m', 'projects.vtest_mimic.tools.gpu_check', '--out',
                           str(out)], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        gpu_check.NO_GPU.format(torch.__version__)]
    assert proc.stdout == '' and not out.exists()


def test_gpu_check_writes_its_timings(tmp_path):
    record = dict(gpu='NVIDIA H100', torch='2.x', cuda='12.x', started='2026-01-01 00:00:00',
                  steps=[dict(name='test suite', command='python -m pytest tests', rc=0,
                              seconds=90.0)])
    gpu_check.write_record(record, str(tmp_path))
    assert json.load(open(tmp_path / 'gpu_check.json')) == record
    md = (tmp_path / 'gpu_check.md').read_text()
    assert '| test suite | `python -m pytest tests` | 0 | 1.5 min |' in md


def test_the_smoke_trains_the_tiny_distiller_with_finite_losses():
    """The GPU check's smoke, run here on the CPU (on a GPU machine it runs on cuda)."""
    losses = gpu_check.cuda_smoke(iters=2, device='cpu')
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mimic'}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
