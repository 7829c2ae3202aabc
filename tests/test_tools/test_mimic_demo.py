"""The main job end to end on a tiny subset: a 32-frame synthetic walker video, 1-2 iterations."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmmimic.testing import write_synthetic_video


def test_mimic_demo_end_to_end(repo_root, tmp_path):
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video, num_frames=32, size=(320, 240))
    out = str(tmp_path / 'demo')
    cmd = [sys.executable, 'tools/mimic_demo.py', '--video', video, '--out', out,
           '--data-dir', osp.join(out, 'data'), '--iters', '1', '--teacher-iters', '2',
           '--gap', '2', '--workers', '0', '--speed-runs', '1', '--speed-shape', '96x128']
    env = dict(os.environ, MMMIMIC_CACHE=str(tmp_path / 'cache'))  # keep ~/.cache untouched
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]

    report = open(osp.join(out, 'report.md')).read()
    for label in ('Inception RPN (teacher)', '1/2-Inception RPN, mimic',
                  '1/2-Inception RPN, scratch', '1/4-Inception RPN, mimic',
                  '1/4-Inception RPN, scratch'):
        assert label in report
    assert 'NOT Caltech numbers' in report
    assert osp.getsize(osp.join(out, 'mr_fppi.png')) > 1000
    assert osp.isfile(osp.join(out, 'speed', 'speed.png'))

    summary = json.load(open(osp.join(out, 'results.json')))
    rows = {r['name']: r for r in summary['rows']}
    assert set(rows) == {'teacher', 'mimic-1-2', 'scratch-1-2', 'mimic-1-4', 'scratch-1-4'}
    for r in rows.values():
        assert 0 <= r['mr2'][0] <= 100 and 0 <= r['mr4'][0] <= 100
    # students really are smaller and the mimic student is its scratch twin at test time
    assert rows['mimic-1-2']['params_m'] == rows['scratch-1-2']['params_m']
    assert rows['scratch-1-4']['params_m'] < rows['scratch-1-2']['params_m'] < \
        0.3 * rows['teacher']['params_m']
    # every model was trained with its own schedule and left its final checkpoint
    assert osp.isfile(osp.join(out, 'seed0', 'teacher', 'iter_2.pth'))
    assert osp.isfile(osp.join(out, 'seed0', 'mimic-1-2', 'iter_1.pth'))
    # the offline scoring tool re-read the metric's result files and agrees with the metric
    assert 'reproduces CaltechMRMetric for every model' in proc.stdout
    assert osp.isfile(osp.join(out, 'seed0', 'results', 'res', 'scratch-1-4', 'set02',
                               'V000.txt'))

    # a re-run reuses every finished stage
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stdout.count('reusing') == 5
