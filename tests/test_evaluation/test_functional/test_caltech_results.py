"""caltech_results: scoring result-file trees, and the torch-free import of the functional core
(the full converter -> metric -> result files -> scoring path is
tests/test_tools/test_caltech_pipeline.py)."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmmimic.datasets import caltech_io as cio
from mmmimic.evaluation.functional import format_mr_table, load_detections, score_result_dirs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def _vbb_release(root, video_name='V000'):
    frames = [[] for _ in range(60)]
    frames[29] = [dict(id=1, lbl='person', pos=[100, 100, 41, 100])]
    frames[59] = [dict(id=1, lbl='person', pos=[300, 100, 41, 100])]
    cio.write_vbb(osp.join(root, 'set06', video_name + '.vbb'), frames)
    return str(root)


def test_score_result_dirs_from_vbb(tmp_path):
    ann = _vbb_release(tmp_path / 'ann')
    res = tmp_path / 'res' / 'alg'
    # frame 30 (I00029): TP; frame 60 (I00059): FP; frame 10 is not evaluated
    cio.write_result_file(str(res / 'set06' / 'V000.txt'),
                          [[30, 100, 100, 41, 100, .9], [60, 0, 0, 41, 100, .8],
                           [10, 300, 100, 41, 100, .95]])
    out = score_result_dirs([str(res)], ann, ['Reasonable'], sets=[6])
    r = out['alg']['Reasonable']
    assert r['num_images'] == 2 and r['num_gt'] == 2 and r['num_dets'] == 2
    # curve: (0, .5) then (.5, .5): miss .5 at every reference from .01 up
    assert r['MR-2'] == pytest.approx(.5)
    assert format_mr_table(out).splitlines()[1].split() == ['alg', '50.00', '50.00']
    dts = load_detections(str(res), [(6, 0, 29), (6, 0, 59), (6, 0, 1)])
    np.testing.assert_array_equal(dts[0], [[100, 100, 41, 100, .9]])
    assert dts[2].shape == (0, 5)


def test_score_result_dirs_bad_inputs(tmp_path):
    ann = _vbb_release(tmp_path / 'ann')
    with pytest.raises(KeyError, match="unknown Caltech setting 'Resonable'"):
        score_result_dirs([str(tmp_path / 'missing')], ann, ['Resonable'], sets=[6])
    bad = _vbb_release(tmp_path / 'bad', video_name='Vx1')
    with pytest.raises(ValueError, match=r'Vx1\.vbb: not a Caltech video file name'):
        score_result_dirs([str(tmp_path / 'missing')], bad, sets=[6])


def test_functional_core_imports_without_torch_and_mmdet():
    """The scoring core loads numpy/scipy only, with no environment switch: ``import mmmimic``
    registers lazily (issue 26; before, ``MMMIMIC_LIGHT_IMPORT=1`` was needed)."""
    code = ('import sys\n'
            'from mmmimic.evaluation.functional import evaluate_caltech, score_result_dirs\n'
            'from mmmimic.datasets.caltech_io import read_result_file, SeqReader\n'
            'from mmmimic.datasets.caltech_converter import convert_caltech\n'
            'import mmmimic, mmmimic.datasets, mmmimic.evaluation\n'
            'assert "CaltechMRMetric" not in vars(mmmimic.evaluation)\n'
            'assert not hasattr(mmmimic, "LIGHT_IMPORT")\n'
            'print(sorted(m for m in ("torch", "mmdet", "mmengine", "mmcv", "matplotlib") '
            'if m in sys.modules))\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'


def test_import_functional_alone_imports_no_torch():
    """Issue 26: ``import mmmimic.evaluation.functional`` imports neither torch nor mmdet."""
    code = ('import sys, mmmimic.evaluation.functional\n'
            'print(sorted(m for m in ("torch", "mmdet", "mmengine", "mmcv") if m in sys.modules))')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'


def test_scoring_tool_runs_light(tmp_path):
    """A whole run of the scoring CLI loads no torch/mmdet."""
    ann = _vbb_release(tmp_path / 'ann')
    res = tmp_path / 'res' / 'alg'
    cio.write_result_file(str(res / 'set06' / 'V000.txt'), np.zeros((0, 6)))
    tool = osp.join(ROOT, 'tools', 'analysis_tools', 'caltech_eval.py')
    code = ('import runpy, sys\n'
            'sys.argv = sys.argv[1:]\n'
            'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\n'
            'except SystemExit as e:\n    assert not e.code, e.code\n'
            'print(sorted(m for m in ("torch", "mmdet", "mmengine") if m in sys.modules))')
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, '-c', code, tool, str(res), '--ann', ann, '--sets',
                           '6', '--out-dir', str(tmp_path / 'plots')], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[1].split() == ['alg', '100.00', '100.00'] and lines[-1] == '[]'
    assert osp.isfile(tmp_path / 'plots' / 'caltech_Reasonable.png')


def test_register_all_modules_after_a_light_import():
    """A light import followed by register_all_modules() registers the metric and dataset."""
    code = ('import sys, mmmimic\n'
            'from mmmimic.evaluation.functional import evaluate_caltech\n'
            'assert "torch" not in sys.modules\n'
            'mmmimic.register_all_modules()\n'
            'from mmdet.registry import DATASETS, METRICS\n'
            'print(METRICS.get("CaltechMRMetric").__name__, '
            'DATASETS.get("CaltechPedestrianDataset").__name__)\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['CaltechMRMetric', 'CaltechPedestrianDataset']


# ---------------------------------------------------------------------------------------------
# issue 24: result files, bbGt files and image lists are untrusted
# ---------------------------------------------------------------------------------------------
def _score(tmp_path, rows, ann=None, img_list=None, name='alg'):
    res = tmp_path / 'res' / name
    os.makedirs(res / 'set06', exist_ok=True)
    (res / 'set06' / 'V000.txt').write_text(rows, encoding='utf-8')
    ann = ann or _vbb_release(tmp_path / 'ann')
    return score_result_dirs([str(res)], ann, ['Reasonable'], sets=[6],
                             img_list=img_list)[name]['Reasonable']


GOOD_ROWS = '30,100,100,41,100,.9\n60,0,0,41,100,.8\n'


@pytest.mark.parametrize('row,box', [('30,141,200,-41,-100,.95', '[141, 200, -41, -100]'),
                                     ('30,100,100,0,0,.95', '[100, 100, 0, 0]')])
def test_degenerate_detections_are_refused_not_scored(tmp_path, row, box):
    """Issue 24: an inverted or zero-size detection was dropped by the height filter without a
    word (here MR-2 50 % -> 100 % when it replaces the TP); now the file and line are named."""
    assert 100 * _score(tmp_path, GOOD_ROWS)['MR-2'] == pytest.approx(50)
    with pytest.raises(ValueError) as e:
        _score(tmp_path, GOOD_ROWS.replace('30,100,100,41,100,.9', row))
    path = str(tmp_path / 'res' / 'alg' / 'set06' / 'V000.txt')
    assert str(e.value) == (f'{path}:1: detection [x, y, w, h] = {box} has a zero or negative '
                            f'width or height; refusing to score it')
    # a box cut by the border (negative x) is scored as usual: here one more FP at frame 60
    r = _score(tmp_path, GOOD_ROWS + '60,-20,-10,41,100,.85\n')
    assert r['num_dets'] == 3 and 100 * r['MR-2'] == pytest.approx(50)


@pytest.mark.parametrize('frame', ['3_0', '\u0663\u0660'])
def test_frame_numbers_with_underscores_or_arabic_digits_are_refused(tmp_path, frame):
    """Issue 24: both were read as frame 30 (a TP: MR-2 50 %)."""
    with pytest.raises(ValueError, match=rf"set06/V000\.txt:1: non-numeric value '{frame}' in "
                                         rf"'{frame},100,100,41,100,\.9'; Python's float\(\) "
                                         r'would read it as 30\.0'):
        _score(tmp_path, GOOD_ROWS.replace('30,', frame + ',', 1))


def _bbgt_release(tmp_path):
    bb = tmp_path / 'bbgt'
    cio.write_bbgt(str(bb / 'set06_V000_I00029.txt'), [dict(lbl='person', pos=[100, 100, 41, 100])])
    cio.write_bbgt(str(bb / 'set06_V000_I00059.txt'), [dict(lbl='person', pos=[300, 100, 41, 100])])
    return str(bb)


def test_repeated_image_list_ids_are_refused(tmp_path):
    """Issue 24: a list naming an image twice scored it twice (3 images, MR-2 33.3 % instead
    of 2 images, 50 %)."""
    bb = _bbgt_release(tmp_path)
    ok, dup = tmp_path / 'test.txt', tmp_path / 'dup.txt'
    ok.write_text('set06_V000_I00029\nset06_V000_I00059\n')
    dup.write_text('set06_V000_I00029\nset06_V000_I00059\nset06_V000_I00029\n')
    r = _score(tmp_path, GOOD_ROWS, ann=bb, img_list=str(ok))
    assert r['num_images'] == 2 and 100 * r['MR-2'] == pytest.approx(50)
    with pytest.raises(ValueError) as e:
        _score(tmp_path, GOOD_ROWS, ann=bb, img_list=str(dup))
    assert str(e.value) == (f'{dup}:3: image set06_V000_I00029 is listed twice (lines 1 and 3); '
                            f'every image must be listed once, or it is scored twice')


def test_inverted_ground_truth_box_is_refused(tmp_path):
    """Issue 24: an inverted bbGt box silently became an ignore region (1 gt instead of 2,
    MR-2 50 % -> 100 %)."""
    bb = _bbgt_release(tmp_path)
    lst = tmp_path / 'test.txt'
    lst.write_text('set06_V000_I00029\nset06_V000_I00059\n')
    gt = osp.join(bb, 'set06_V000_I00029.txt')
    with open(gt, 'w') as f:
        f.write('% bbGt version=3\nperson 141 200 -41 -100 0 0 0 0 0 0 0\n')
    with pytest.raises(ValueError) as e:
        _score(tmp_path, GOOD_ROWS, ann=bb, img_list=str(lst))
    assert str(e.value) == (f"{gt}:2: 'person' pos [l, t, w, h] = [141, 200, -41, -100] has a "
                            f'zero or negative width or height')


def _run_tool(tmp_path, *args):
    env = dict(os.environ)
    tool = osp.join(ROOT, 'tools', 'analysis_tools', 'caltech_eval.py')
    return subprocess.run([sys.executable, tool, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_scoring_tool_refuses_existing_plots(tmp_path):
    """Issue 24: caltech_eval.py replaced existing plots; now it refuses them, before scoring
    anything, unless --overwrite, and writes through the atomic writer (no temporary file)."""
    ann = _vbb_release(tmp_path / 'ann')
    res = tmp_path / 'res' / 'alg'
    cio.write_result_file(str(res / 'set06' / 'V000.txt'), [[30, 100, 100, 41, 100, .9]])
    plots = tmp_path / 'plots'
    plots.mkdir()
    plot = plots / 'caltech_Reasonable.png'
    plot.write_bytes(b'my own figure')
    args = (res, '--ann', ann, '--sets', 6, '--out-dir', plots)
    proc = _run_tool(tmp_path, *args)
    assert proc.returncode == 1 and proc.stdout == ''  # refused before the scoring table
    assert proc.stderr == (f'error: plot {plot} already exists; pass --overwrite to replace '
                           f'it\n')
    assert plot.read_bytes() == b'my own figure'
    proc = _run_tool(tmp_path, *args, '--overwrite', '--settings', 'Reasonable', 'Reasonable')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split() == ['alg', '50.00', '50.00']  # 1 of 2 found
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert os.listdir(plots) == ['caltech_Reasonable.png']
