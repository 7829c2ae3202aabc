"""Tests of the command line projects/vtest_mimic/tools/build_vtest.py (the library it calls,
:mod:`projects.vtest_mimic.vtest_mimic.dataset`, is tested in test_dataset/)."""
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import numpy as np
import pytest

from mmmimic.datasets.caltech_io import SeqReader, read_vbb
from projects.vtest_mimic.vtest_mimic.dataset import LabelerConfig, build_release
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video

TOOL = 'projects.vtest_mimic.tools.build_vtest'
SPLIT_ARGS = ['--test-frac', '0.3', '--val-frac', '0.1', '--gap', '2']


def _run(repo_root, args):
    return subprocess.run([sys.executable, '-m', TOOL] + args, cwd=repo_root, capture_output=True,
                          text=True, timeout=300)


def test_cli_builds_release(repo_root, tmp_path):
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video)
    out, cache, show = (str(tmp_path / d) for d in ('out', 'cache', 'show'))
    proc = _run(repo_root, ['--video', video, '--out', out, '--cache-dir', cache, '--no-download',
                            '--size', '200x120', '--hog', 'off', '--show-dir', show,
                            '--show-num', '4'] + SPLIT_ARGS)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert f'video: {video}' in proc.stdout
    with open(osp.join(out, 'splits.json')) as fh:
        info = json.load(fh)
    assert info['labeler']['use_hog'] is False and info['size'] == [200, 120]
    assert [info['sets'][s]['video_frames'] for s in ('set00', 'set01', 'set02')] == \
        [[0, 19], [22, 25], [28, 39]]
    assert len(os.listdir(show)) == 4
    # The CLI's release is the library's release at half the size (labels from the same cache).
    full_out = str(tmp_path / 'full')
    build_release(video, full_out, cfg=LabelerConfig(use_hog=False), cache_dir=cache,
                  size='native', test_frac=0.3, val_frac=0.1, gap=2, verbose=False)
    half = read_vbb(osp.join(out, 'annotations', 'set00', 'V000.vbb'))
    full = read_vbb(osp.join(full_out, 'annotations', 'set00', 'V000.vbb'))
    assert len(SeqReader(osp.join(out, 'set00', 'V000.seq'))) == len(half) == 20
    p_full = [o['pos'] for o in full[0] if o['lbl'] == 'person']
    p_half = [o['pos'] for o in half[0] if o['lbl'] == 'person']
    np.testing.assert_allclose(np.array(p_half), np.array(p_full) / 2, atol=0.02)


def test_cli_errors(repo_root, tmp_path, monkeypatch, capsys):
    # In-process (runpy) to spare a second interpreter start-up.
    argv = ['build_vtest.py', '--video', str(tmp_path / 'missing.avi'), '--out',
            str(tmp_path / 'out')]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exc:
        runpy.run_module(TOOL, run_name='__main__')
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert 'error: --video' in err and 'does not exist' in err
    assert not osp.exists(tmp_path / 'out')
