"""The stack smoke test: mmdet's Faster R-CNN through tools/train.py and tools/test.py."""
import glob
import json
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import runpy

from mmmimic.testing import tiny_coco_overrides

CONFIG = 'mmmimic/testing/configs/smoke/faster-rcnn_r18-tiny_tiny-coco.py'


def _cfg_options(data_root, **extra):
    opts = {**tiny_coco_overrides(data_root), **extra}
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def _run_tool(repo_root, *args, expect_ok=True):
    proc = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if expect_ok:
        assert proc.returncode == 0, out[-4000:]
    else:
        assert proc.returncode != 0, out[-4000:]
    return out


def _fail_in_process(repo_root, monkeypatch, tool, *args):
    """Run a tool's main() in this process (no interpreter start-up) and return its error."""
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv('MMMIMIC_DEBUG', '1')  # the exception itself, not the one-line report
    monkeypatch.setattr(sys, 'argv', [tool, *args])
    with pytest.raises(Exception) as excinfo:
        runpy.run_path(tool, run_name='__main__')
    return str(excinfo.value)


@pytest.fixture(scope='module')
def trained(repo_root, tiny_coco, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('smoke_train'))
    _run_tool(repo_root, 'tools/train.py', CONFIG, '--work-dir', work_dir,
              *_cfg_options(tiny_coco, **{'train_cfg.max_iters': 4, 'train_cfg.val_interval': 4,
                                          'default_hooks.checkpoint.interval': 4}))
    return work_dir


def test_train_writes_checkpoint_and_validates(trained):
    assert osp.isfile(osp.join(trained, 'iter_4.pth'))
    scalars = glob.glob(osp.join(trained, '*', 'vis_data', 'scalars.json'))
    assert scalars, 'no scalars.json written'
    records = [json.loads(line) for line in open(scalars[0])]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 4 and all(0 < v < 100 for v in losses)
    assert any('coco/bbox_mAP' in r for r in records), 'validation did not run'


def test_test_tool_reports_metric_and_dumps(repo_root, tiny_coco, trained, tmp_path):
    out_pkl = str(tmp_path / 'dets.pkl')
    out = _run_tool(repo_root, 'tools/test.py', CONFIG, osp.join(trained, 'iter_4.pth'),
                    '--work-dir', str(tmp_path), '--out', out_pkl, '--show-dir', 'vis',
                    *_cfg_options(tiny_coco))
    assert 'coco/bbox_mAP:' in out
    with open(out_pkl, 'rb') as f:
        dets = pickle.load(f)
    assert len(dets) == 6  # one entry per val image
    assert {'pred_instances', 'img_path'} <= set(dets[0])
    painted = glob.glob(osp.join(str(tmp_path), '*', 'vis', '*.jpg'))
    assert len(painted) == 6


def test_fresh_run_refuses_to_overwrite_and_resume_continues(repo_root, tiny_coco, trained,
                                                             monkeypatch):
    opts = _cfg_options(tiny_coco, **{'train_cfg.max_iters': 5, 'train_cfg.val_interval': 100})
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG, '--work-dir',
                           trained, *opts)
    assert 'already holds checkpoints' in err and trained in err
    out = _run_tool(repo_root, 'tools/train.py', CONFIG, '--work-dir', trained, '--resume',
                    *opts)
    assert 'resumed' in out.lower() and 'Iter(train) [5/5]' in out


def test_bad_paths_fail_at_once_naming_them(repo_root, tmp_path, monkeypatch):
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', 'configs/nope/missing.py')
    assert 'config file not found: configs/nope/missing.py' in err
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG, '--work-dir',
                           str(tmp_path), '--resume', '/no/such/ckpt.pth')
    assert '--resume checkpoint not found: /no/such/ckpt.pth' in err
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG, '/no/such/ckpt.pth')
    assert 'checkpoint file not found: /no/such/ckpt.pth' in err


def test_checkpoint_of_another_model_is_rejected(repo_root, tiny_coco, tmp_path, monkeypatch):
    import torch
    foreign = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(3, 3, 7, 7),
                               'head.fc.weight': torch.zeros(2, 2)}}, foreign)
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG, foreign,
                           '--work-dir', str(tmp_path), *_cfg_options(tiny_coco),
                           '--cfg-options', 'visualizer.name=vis_foreign')
    assert f'checkpoint {foreign} does not fit the model' in err
    assert 'head.fc.weight' in err and 'shape mismatch' in err


def test_amp_on_cpu_is_a_clear_error(repo_root, tmp_path, monkeypatch):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG, '--work-dir',
                           str(tmp_path), '--amp')
    assert '--amp needs a CUDA, NPU or MLU device' in err


def test_tta_checks_the_checkpoint_strictly(repo_root, tiny_coco, tmp_path, monkeypatch):
    import torch
    foreign = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}}, foreign)
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG, foreign, '--tta',
                           '--work-dir', str(tmp_path), *_cfg_options(tiny_coco),
                           '--cfg-options', 'visualizer.name=vis_tta_foreign')
    assert f'checkpoint {foreign} does not fit the model' in err and 'head.fc.weight' in err


def test_out_file_is_not_overwritten_without_the_flag(repo_root, trained, tmp_path, monkeypatch):
    out_pkl = tmp_path / 'dets.pkl'
    out_pkl.write_bytes(b'earlier results')
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG,
                           osp.join(trained, 'iter_4.pth'), '--out', str(out_pkl))
    assert f'--out file {out_pkl} already exists; pass --overwrite' in err
    assert out_pkl.read_bytes() == b'earlier results'
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG,
                           osp.join(trained, 'iter_4.pth'), '--out',
                           str(tmp_path / 'no_dir' / 'dets.pkl'))
    assert 'does not exist' in err and 'no_dir' in err


def test_pathless_resume_checks_the_checkpoint_strictly(repo_root, tiny_coco, tmp_path,
                                                        monkeypatch):
    import torch
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    foreign = str(work_dir / 'iter_2.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}, 'meta': {}}, foreign)
    (work_dir / 'last_checkpoint').write_text(foreign)
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG, '--work-dir',
                           str(work_dir), '--resume', *_cfg_options(tiny_coco))
    assert f'checkpoint {foreign} does not fit the model' in err


def test_copied_work_dir_resumes_from_its_own_checkpoint(repo_root, tiny_coco, trained,
                                                         tmp_path):
    import shutil
    copy = str(tmp_path / 'copy')
    shutil.copytree(trained, copy)
    with open(osp.join(copy, 'last_checkpoint')) as f:
        named = f.read().strip()
    assert named.startswith(trained)  # mmengine wrote the original run's absolute path
    out = _run_tool(repo_root, 'tools/train.py', CONFIG, '--work-dir', copy, '--resume',
                    *_cfg_options(tiny_coco, **{'train_cfg.max_iters': 6,
                                                'train_cfg.val_interval': 100}))
    assert f'--resume: continuing from {osp.join(copy, osp.basename(named))}' in out
    assert 'resumed' in out.lower() and 'Iter(train) [6/6]' in out
    assert osp.isfile(osp.join(copy, 'iter_6.pth'))
    assert not osp.exists(osp.join(trained, 'iter_6.pth'))


def test_fresh_run_keeps_a_different_file_named_like_the_config_dump(repo_root, tiny_coco,
                                                                     tmp_path, monkeypatch):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    users = work_dir / osp.basename(CONFIG)
    users.write_text('# my own notes, not the dumped config\n')
    err = _fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG, '--work-dir',
                           str(work_dir), *_cfg_options(tiny_coco))
    assert f'{users} exists and differs from the config this run would write' in err
    assert users.read_text() == '# my own notes, not the dumped config\n'


def test_a_refusal_is_one_line_and_debug_shows_the_traceback(repo_root):
    proc = subprocess.run([sys.executable, 'tools/train.py', 'configs/nope/missing.py'],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: config file not found: configs/nope/missing.py (FileNotFoundError; --debug '
        'shows the traceback)')
    assert 'Traceback' not in proc.stderr
    proc = subprocess.run([sys.executable, 'tools/test.py', 'configs/nope/missing.py', 'x.pth',
                           '--debug'], cwd=repo_root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and 'Traceback' in proc.stderr
    assert 'FileNotFoundError: config file not found: configs/nope/missing.py' in proc.stderr


def test_test_tool_never_dumps_over_the_config_it_was_given(repo_root, trained, monkeypatch):
    """Testing a training work dir's saved config: the Runner's config dump used to replace that
    config (e.g. with the ONNX model of a ``.onnx`` test). Now the default work dir moves to
    ``<dir>/test`` and an explicit ``--work-dir`` there is refused."""
    saved = osp.join(trained, osp.basename(CONFIG))
    before = open(saved, 'rb').read()
    err = _fail_in_process(repo_root, monkeypatch, 'tools/test.py', saved,
                           osp.join(trained, 'iter_4.pth'), '--work-dir', trained)
    assert f'--work-dir {trained}: testing there would replace {saved}' in err
    out = _run_tool(repo_root, 'tools/test.py', saved, osp.join(trained, 'iter_4.pth'))
    assert 'coco/bbox_mAP:' in out and f'work dir: {osp.join(trained, "test")}' in out
    assert open(saved, 'rb').read() == before
    assert osp.isfile(osp.join(trained, 'test', osp.basename(CONFIG)))
