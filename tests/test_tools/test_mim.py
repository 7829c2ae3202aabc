"""``mim train mmmimic <config>`` / ``mim test`` on an installed (non-editable) mmmimic."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from mmmimic.testing import tiny_coco_overrides

CONFIG = 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'
# the environment's own mim, whether or not its bin/ is on PATH (CI calls .venv/bin/python)
MIM = [sys.executable, '-m', 'mim']


@pytest.fixture(scope='module')
def installed_copy(repo_root, tmp_path_factory):
    """pip-install the package (as a user gets it: configs/tools copied into mmmimic/.mim)."""
    try:
        import mim  # noqa: F401
    except ImportError:
        pytest.fail('openmim is not installed (tools/install.sh installs it)')
    src = tmp_path_factory.mktemp('mim_src')
    files = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                           cwd=repo_root, capture_output=True, text=True, check=True).stdout
    for rel in files.split():
        if osp.isfile(osp.join(repo_root, rel)):
            os.makedirs(osp.dirname(osp.join(src, rel)), exist_ok=True)
            shutil.copy2(osp.join(repo_root, rel), osp.join(src, rel))
    target = str(tmp_path_factory.mktemp('mim_site'))
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                    '--no-build-isolation', '--target', target, str(src)], check=True,
                   timeout=300)
    assert osp.isfile(osp.join(target, 'mmmimic', '.mim', 'tools', 'train.py'))
    assert osp.isfile(osp.join(target, CONFIG))  # the fixtures ship inside the package
    return target


def test_mim_train_and_test(installed_copy, tiny_coco, tmp_path):
    env = dict(os.environ, PYTHONPATH=installed_copy)
    opts = [f'{k}={v}' for k, v in tiny_coco_overrides(tiny_coco).items()]
    work_dir = str(tmp_path / 'work')
    # run from an unrelated folder: the config is found inside the installed package
    train = subprocess.run(
        [*MIM, 'train', 'mmmimic', CONFIG, '--work-dir', work_dir, '--cfg-options', *opts,
         'train_cfg.max_iters=2', 'train_cfg.val_interval=100'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    test = subprocess.run(
        [*MIM, 'test', 'mmmimic', CONFIG, '--checkpoint', ckpt, '--work-dir', work_dir,
         '--cfg-options', *opts],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, (test.stdout + test.stderr)[-3000:]
    assert 'coco/bbox_mAP:' in test.stdout + test.stderr


def test_mim_train_passes_the_teacher_flag(installed_copy, repo_root, tiny_coco, tmp_path):
    from mmmimic.testing.distill import TEACHER_CFG, make_teacher_ckpt
    teacher_ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    env = dict(os.environ, PYTHONPATH=installed_copy)
    opts = [f'{split}_dataloader.dataset.data_root={tiny_coco}' for split in ('train', 'val')]
    work_dir = str(tmp_path / 'work')
    train = subprocess.run(
        [*MIM, 'train', 'mmmimic', 'mmmimic/testing/configs/mimic/rpn_r18-w8_scratch_tiny.py',
         '--teacher', osp.abspath(TEACHER_CFG), teacher_ckpt, '--no-teacher-check',
         '--work-dir', work_dir, '--cfg-options', *opts, 'train_cfg.max_iters=1',
         'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_1.pth'))
    assert "type='FeatureMimicDistiller'" in open(
        osp.join(work_dir, 'rpn_r18-w8_scratch_tiny.py')).read()
