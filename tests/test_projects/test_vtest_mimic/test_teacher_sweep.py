"""projects/vtest_mimic/tools/teacher_sweep.py on a 32-frame synthetic walker video: every teacher
candidate (full-size frames, upscaled x2, scale jitter + photometric distortion) trained for 2
iterations, validated after each, their kept checkpoints re-scored on the validation split, and
the choice written."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from projects.vtest_mimic.vtest_mimic.models import BY_NAME, TEACHER_CANDIDATES
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video


def test_candidates_differ_only_in_the_input():
    from mmengine.config import Config
    full, x2 = TEACHER_CANDIDATES['full'], TEACHER_CANDIDATES['x2']
    assert full is BY_NAME['teacher']  # the main job's own teacher, its run reused
    # every candidate is 'the teacher' to the students; each trains in its own folder
    assert {m.name for m in TEACHER_CANDIDATES.values()} == {'teacher'}
    assert len({m.run_dir for m in TEACHER_CANDIDATES.values()}) == len(TEACHER_CANDIDATES)
    a, b = (Config.fromfile(m.config) for m in (full, x2))
    assert a.model.backbone == b.model.backbone and a.model.rpn_head.anchor_generator.strides == \
        b.model.rpn_head.anchor_generator.strides
    # the anchors double with the people
    assert [2 * s for s in a.model.rpn_head.anchor_generator.scales] == \
        b.model.rpn_head.anchor_generator.scales
    resize = [t for t in b.train_dataloader.dataset.pipeline if t['type'] == 'Resize']
    assert resize == [dict(type='Resize', scale=(1280, 960), keep_ratio=True)]
    # the same crops (the same cost per iteration), now of the upscaled frames
    crop = [t for t in b.train_dataloader.dataset.pipeline if 'Crop' in t['type']]
    assert crop == [t for t in a.train_dataloader.dataset.pipeline if 'Crop' in t['type']]
    for loader in ('val_dataloader', 'test_dataloader'):
        sizes = [t['scale'] for t in b[loader].dataset.pipeline if t['type'] == 'Resize']
        assert sizes == [(1280, 960)], loader
    # the augmented candidate: the plain teacher's network, crops and test frames, and only
    # training-time scale jitter and photometric distortion added
    c = Config.fromfile(TEACHER_CANDIDATES['jitter'].config)
    assert c.model == a.model
    plain = [t['type'] for t in a.train_dataloader.dataset.pipeline]
    jitter = [t['type'] for t in c.train_dataloader.dataset.pipeline]
    assert [t for t in jitter if t not in ('RandomResize', 'PhotoMetricDistortion')] == plain
    for loader in ('val_dataloader', 'test_dataloader'):
        assert c[loader].dataset.pipeline == a[loader].dataset.pipeline, loader


@pytest.mark.slow
def test_teacher_sweep_end_to_end(repo_root, tmp_path):
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video, num_frames=32, size=(320, 240))
    out = str(tmp_path / 'demo')
    commit = str(tmp_path / 'commit')
    cmd = [sys.executable, '-m', 'projects.vtest_mimic.tools.teacher_sweep', '--commit-to', commit,
           '--video', video, '--out', out, '--data-dir', osp.join(out, 'data'),
           '--teacher-iters', '2', '--teacher-val-interval', '1', '--gap', '2', '--workers', '0']
    env = dict(os.environ, MMMIMIC_CACHE=str(tmp_path / 'cache'))
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    result = json.load(open(osp.join(commit, 'teacher_sweep.json')))
    rows = result['candidates']
    assert set(rows) == {'full', 'x2', 'jitter'}
    assert {n: r['run_dir'] for n, r in rows.items()} == {
        'full': 'teacher', 'x2': 'teacher-x2', 'jitter': 'teacher-jitter'}
    for name, r in rows.items():
        curve = dict(r['curve'])
        assert sorted(curve) == [1, 2], name  # a validation after each iteration
        # the kept checkpoint is the best validation, and re-scoring it gives the same MR-2
        assert r['kept_iter'] == min(curve, key=curve.get), name
        assert r['val_mr2'] == pytest.approx(curve[r['kept_iter']], abs=1e-6), name
        assert r['checkpoint'] == f'best_caltech_Reasonable_MR-2_iter_{r["kept_iter"]}.pth'
    assert result['chosen'] == min(rows, key=lambda n: rows[n]['val_mr2'])
    table = open(osp.join(commit, 'teacher_sweep.md')).read()
    assert f'Chosen (lowest validation MR-2 of the kept checkpoint): {result["chosen"]}' in table
    assert 'projects/vtest_mimic/configs/rpn_inception_vtest-x2.py' in table
    assert osp.getsize(osp.join(commit, 'teacher_sweep.png')) > 1000
    # the test split was never scored
    for name in ('teacher', 'teacher-x2', 'teacher-jitter'):
        files = os.listdir(osp.join(out, 'shared', name))
        assert 'val_metrics.json' in files and 'test_metrics.json' not in files, name

    # a re-run reuses every candidate
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stdout.count('reusing') == 3
    assert json.load(open(osp.join(commit, 'teacher_sweep.json')))['candidates'] == rows
