"""tools/dist_train.sh and tools/dist_test.sh run ``python -m torch.distributed.run`` from the
project's interpreter: no activated venv and no ``torchrun`` on PATH needed (issue #25, item 8)."""
import os
import os.path as osp
import shutil
import socket
import subprocess

import pytest

from mmmimic.testing import tiny_coco_overrides

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMOKE_CFG = 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'
BARE_PATH = '/usr/bin:/bin'  # no venv, no torchrun

# A stand-in interpreter: records how the script called it.
STUB = ('#!/bin/sh\n'
        '{ echo "PYTHONPATH=$PYTHONPATH"; for a in "$@"; do echo "$a"; done; } > "$STUB_LOG"\n')


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHON')}
    env.update({'PATH': BARE_PATH, **extra})
    return env


def _stub(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(STUB)
    os.chmod(path, 0o755)


def _fake_repo(tmp_path, with_venv):
    """A copy of the two scripts in a repository of their own, with a stub .venv python."""
    repo = tmp_path / 'repo'
    os.makedirs(repo / 'tools')
    for name in ('dist_train.sh', 'dist_test.sh'):
        shutil.copy(osp.join(ROOT, 'tools', name), repo / 'tools' / name)
    if with_venv:
        _stub(str(repo / '.venv' / 'bin' / 'python'))
    return repo


def _call(repo, script, *args, **env):
    log = str(repo / 'called.txt')
    if osp.exists(log):
        os.remove(log)
    proc = subprocess.run(['bash', str(repo / 'tools' / script), *args], capture_output=True,
                          text=True, env=_env(STUB_LOG=log, **env), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(log) as f:
        return f.read().splitlines()


@pytest.mark.parametrize('script, args, nproc, tool, rest', [
    ('dist_train.sh', ['cfg dir/a.py', '2', '--work-dir', 'w d', '--cfg-options', 'x=1'], 2,
     'train.py', ['cfg dir/a.py', '--launcher', 'pytorch', '--work-dir', 'w d',
                  '--cfg-options', 'x=1']),
    ('dist_test.sh', ['a.py', 'c.pth', '3', '--out', 'o.pkl'], 3,
     'test.py', ['a.py', 'c.pth', '--launcher', 'pytorch', '--out', 'o.pkl']),
])
def test_scripts_run_torch_distributed_from_the_repo_venv(tmp_path, script, args, nproc, tool,
                                                          rest):
    """Arguments (spaces included) reach the tool as they were given."""
    repo = _fake_repo(tmp_path, with_venv=True)
    called = _call(repo, script, *args, PYTHONPATH='/elsewhere')
    tools = str(repo / 'tools')
    assert called == [
        f'PYTHONPATH={tools}/..:/elsewhere', '-m', 'torch.distributed.run', '--nnodes=1',
        '--node_rank=0', '--master_addr=127.0.0.1', f'--nproc_per_node={nproc}',
        '--master_port=29500', f'{tools}/{tool}', *rest]
    # $PYTHON wins; the torchrun settings pass through
    other = str(tmp_path / 'other' / 'python')
    _stub(other)
    called = _call(repo, script, *args, PYTHON=other, PORT='29999', NNODES='2', PYTHONPATH='')
    assert '--master_port=29999' in called and '--nnodes=2' in called
    assert called[0] == f'PYTHONPATH={tools}/..'


def test_without_a_venv_python3_from_path_runs_it(tmp_path):
    repo = _fake_repo(tmp_path, with_venv=False)
    bin_dir = tmp_path / 'bin'
    _stub(str(bin_dir / 'python3'))
    log = str(repo / 'called.txt')
    proc = subprocess.run(['bash', str(repo / 'tools' / 'dist_train.sh'), 'a.py', '1'],
                          capture_output=True, text=True, timeout=60,
                          env=_env(STUB_LOG=log, PATH=f'{bin_dir}:{BARE_PATH}'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(log) as f:
        assert f.read().splitlines()[1:4] == ['-m', 'torch.distributed.run', '--nnodes=1']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not os.access(osp.join(ROOT, '.venv', 'bin', 'python'), os.X_OK),
                    reason='needs the project .venv')
def test_dist_train_and_test_two_processes_without_torchrun_on_path(tiny_coco, tmp_path):
    """The real thing: one iteration of the tiny smoke config in 2 CPU processes (gloo), then
    its test in 2 processes, with a PATH that has neither the venv nor torchrun."""
    work_dir = str(tmp_path / 'work')
    opts = {**tiny_coco_overrides(tiny_coco), 'train_cfg.max_iters': 1,
            'train_cfg.val_interval': 1000, 'default_hooks.checkpoint.interval': 1}
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', SMOKE_CFG, '2', '--work-dir', work_dir,
         '--cfg-options', *[f'{k}={v}' for k, v in opts.items()]],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=_env(PORT=str(_free_port()), PYTHONPATH=''))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'command not found' not in out
    assert 'Distributed training: True' in out and 'GPU number: 2' in out, out[-4000:]
    assert osp.isfile(osp.join(work_dir, 'iter_1.pth'))
    assert 'coco/bbox_mAP:' in out  # the last iteration validates, across both processes

    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', SMOKE_CFG, osp.join(work_dir, 'iter_1.pth'), '2',
         '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         *[f'{k}={v}' for k, v in tiny_coco_overrides(tiny_coco).items()]],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=_env(PORT=str(_free_port()), PYTHONPATH=''))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'GPU number: 2' in out and 'coco/bbox_mAP:' in out, out[-4000:]
