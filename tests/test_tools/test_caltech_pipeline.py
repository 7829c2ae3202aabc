"""A generated mini Caltech release through converter -> dataset -> metric -> scoring tool.

The release: set00 (training, 10 frames) and set06 (test, two videos of 60 frames) written as
real .seq files (JPEG frames from cv2.imencode) and .vbb files (scipy). The test preset samples
frames 29 and 59: four test images with hand-placed gts and detections, so the expected MR is
computed by hand below.
"""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from mmmimic.datasets import caltech_converter as converter
from mmmimic.datasets import caltech_io
from mmmimic.evaluation.functional import caltech_results as scorer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(rel_path, *args):
    """Run a tool as a user does; returns (exit code, stdout, stderr)."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, osp.join(ROOT, rel_path), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def converter_cli(*args):
    return run_tool('tools/dataset_converters/caltech.py', *args)


def scoring_cli(*args):
    return run_tool('tools/analysis_tools/caltech_eval.py', *args)


P = 'person'
# test frames: (video, frame) -> objects (id, lbl, pos, posv)
TEST_OBJECTS = {
    (0, 29): [(1, P, [100, 100, 41, 100], None), (2, 'people', [300, 100, 80, 100], None),
              (3, 'person-fa', [500, 100, 20, 50], None)],
    (0, 59): [(4, P, [200, 150, 30, 80], [200, 150, 30, 40]), (5, P, [50, 50, 20, 40], None)],
    (1, 29): [],
    (1, 59): [(1, P, [400, 200, 41, 100], None)],
}
# detections [x, y, w, h, score] in original coordinates
TEST_DETS = {
    (0, 29): [[100, 100, 41, 100, .9], [310, 110, 20, 50, .8], [500, 300, 41, 100, .95]],
    (0, 59): [[200, 150, 30, 80, .95]],
    (1, 29): [[100, 100, 41, 100, .6]],
    (1, 59): [],
}
# By hand (Reasonable): gts A (0,29) and D (1,59) count; 'people', the occluded (vf .5) and the
# 40 px person are ignore regions; person-fa is dropped. Dets: .95 FP; .9 TP on A; .8 inside the
# 'people' region (ignored); .95 on (0,59) covers the occluded person (ignored); .6 FP. Counted,
# by score: FP, TP, FP over 4 images -> points (fppi, recall) (.25, 0), (.25, .5), (.5, .5).
# MR-2 refs .01 .. 1: miss 1 below .25 (6 refs), .5 at .316, .562, 1 -> .5 ** (3/9).
# MR-4 refs 1e-4 .. 1 (step 10^.5): 7 refs below .25 -> .5 ** (2/9).
EXPECTED_MR2 = 100 * 0.5**(3 / 9)
EXPECTED_MR4 = 100 * 0.5**(2 / 9)


def _jpeg(i):
    img = np.full((480, 640, 3), (i * 7) % 255, np.uint8)
    return cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 50])[1].tobytes()


def _vbb_frames(n, objects):
    frames = [[] for _ in range(n)]
    for f, objs in objects.items():
        frames[f] = [dict(id=i, lbl=lbl, pos=pos, posv=posv or [0, 0, 0, 0],
                          occl=int(posv is not None)) for i, lbl, pos, posv in objs]
    return frames


def make_release(root):
    jpgs = [_jpeg(i) for i in range(60)]
    for v in (0, 1):
        caltech_io.write_seq(osp.join(root, 'set06', f'V{v:03d}.seq'), jpgs, 640, 480)
        objs = {f: o for (vv, f), o in TEST_OBJECTS.items() if vv == v}
        objs[10] = [(9, P, [10, 10, 41, 100], None)]  # not sampled
        caltech_io.write_vbb(osp.join(root, 'annotations', 'set06', f'V{v:03d}.vbb'),
                             _vbb_frames(60, objs))
    caltech_io.write_seq(osp.join(root, 'set00', 'V000.seq'), jpgs[:10], 640, 480)
    caltech_io.write_vbb(osp.join(root, 'annotations', 'set00', 'V000.vbb'),
                         _vbb_frames(10, {2: [(1, P, [100, 100, 41, 100], None)],
                                          5: [(2, 'people', [10, 10, 50, 50], None)]}))
    return jpgs


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    src = str(tmp_path_factory.mktemp('release'))
    out = str(tmp_path_factory.mktemp('caltech'))
    jpgs = make_release(src)
    counts = converter.convert_caltech(src, out, ['train10x', 'test'], progress=False)
    return src, out, jpgs, counts


def test_converter_output(converted):
    src, out, jpgs, counts = converted
    assert counts['test'][6] == dict(images=4, with_person=3, persons=4, written=4)
    assert counts['train10x'][0] == dict(images=3, with_person=1, persons=1, written=3)
    with open(osp.join(out, 'test.txt')) as f:
        assert f.read().split() == ['set06_V000_I00029', 'set06_V000_I00059',
                                    'set06_V001_I00029', 'set06_V001_I00059']
    with open(osp.join(out, 'images', 'set06_V001_I00059.jpg'), 'rb') as f:
        assert f.read() == jpgs[59]  # the seq's JPEG bytes, not re-encoded
    objs = caltech_io.read_bbgt(osp.join(out, 'annotations', 'set06_V000_I00059.txt'))
    assert [o['lbl'] for o in objs] == [P, P]
    assert objs[0]['posv'] == [200, 150, 30, 40] and objs[0]['occl'] == 1
    assert 'set00' in converter.format_counts(counts)


def test_converter_resumes_and_cli(converted):
    src, out, _, _ = converted
    counts = converter.convert_caltech(src, out, ['test'], progress=False)
    assert counts['test'][6]['written'] == 0 and counts['test'][6]['images'] == 4
    code, out_text, _ = converter_cli(src, out, '--presets', 'test', '--no-progress')
    assert code == 0 and 'set06' in out_text


def test_converter_truncated_seq_keeps_finished_output(converted, tmp_path):
    src, _, jpgs, _ = converted
    import shutil
    bad_src = str(tmp_path / 'src')
    shutil.copytree(src, bad_src)
    seq = osp.join(bad_src, 'set06', 'V001.seq')
    with open(seq, 'r+b') as f:
        f.truncate(os.path.getsize(seq) - 5000)
    out = str(tmp_path / 'out')
    with pytest.raises(ValueError, match=r'V001\.seq.*frame \d+ extends past end of file'):
        converter.convert_caltech(bad_src, out, ['test'], progress=False)
    done = sorted(os.listdir(osp.join(out, 'images')))
    assert done == ['set06_V000_I00029.jpg', 'set06_V000_I00059.jpg']  # V000 finished, intact
    code, _, err = converter_cli(bad_src, out, '--presets', 'test', '--no-progress')
    assert code == 1 and err.startswith('error: ') and 'extends past end of file' in err


def test_converter_bad_vbb(converted, tmp_path):
    src, _, _, _ = converted
    import shutil
    bad_src = str(tmp_path / 'src')
    shutil.copytree(src, bad_src)
    from scipy.io import savemat
    savemat(osp.join(bad_src, 'annotations', 'set06', 'V000.vbb'), {'B': np.zeros(3)})
    with pytest.raises(ValueError, match=r'V000\.vbb: not a vbb file \(no struct A'):
        converter.convert_caltech(bad_src, str(tmp_path / 'out'), ['test'], progress=False)


def _run_metric(out, tmp_path, **metric_kw):
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/caltech_480x640.py'))
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = out + '/'
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 4
    metric_cfg = dict(cfg.test_evaluator, outfile_prefix=str(tmp_path), **metric_kw)
    evaluator = Evaluator(metric_cfg)
    for i in range(len(dataset)):
        item = dataset[i]
        sample = item['data_samples']
        assert tuple(item['inputs'].shape[1:]) == (480, 640)
        s, v, f = (int(sample.img_id[3:5]), int(sample.img_id[7:10]), int(sample.img_id[12:]))
        d = np.array(TEST_DETS[(v, f)], dtype=np.float32).reshape(-1, 5)
        pred = InstanceData()
        pred.bboxes = torch.from_numpy(np.c_[d[:, :2], d[:, :2] + d[:, 2:4]])
        pred.scores = torch.from_numpy(d[:, 4])
        pred.labels = torch.zeros(len(d), dtype=torch.long)
        sample.pred_instances = pred
        evaluator.process(data_samples=[sample])
    return evaluator.evaluate(len(dataset))


def test_dataset_metric_and_scoring_tool(converted, tmp_path):
    src, out, _, _ = converted
    metrics = _run_metric(out, tmp_path)
    assert metrics['caltech/Reasonable_MR-2'] == pytest.approx(EXPECTED_MR2, abs=1e-6)
    assert metrics['caltech/Reasonable_MR-4'] == pytest.approx(EXPECTED_MR4, abs=1e-6)
    assert osp.isfile(tmp_path / 'caltech_Reasonable_mr_fppi.png')
    res_dir = tmp_path / 'res' / 'mmmimic'
    with open(res_dir / 'set06' / 'V000.txt') as f:
        assert f.readline().startswith('30,')  # image I00029 is frame 30
    # the official result files, re-scored against the vbb and against the bbGt files
    for ann, img_list in ((osp.join(src, 'annotations'), None),
                          (osp.join(out, 'annotations'), osp.join(out, 'test.txt'))):
        res = scorer.score_result_dirs([str(res_dir)], ann, ['Reasonable', 'All'],
                                       img_list=img_list)
        for setting in ('Reasonable', 'All'):
            assert 100 * res['mmmimic'][setting]['MR-2'] == pytest.approx(
                metrics[f'caltech/{setting}_MR-2'], abs=1e-9)
    code, out_text, err = scoring_cli(res_dir, res_dir, '--names', 'a', 'b', '--ann',
                                      osp.join(src, 'annotations'), '--out-dir',
                                      tmp_path / 'plots')
    assert code == 0, err
    assert f'{metrics["caltech/Reasonable_MR-2"]:.2f}' in out_text.splitlines()[1]
    assert osp.isfile(tmp_path / 'plots' / 'caltech_Reasonable.png')


def test_metric_options(converted, tmp_path):
    _, out, _, _ = converted
    m = _run_metric(out, tmp_path, log_floor=1e-10, resize_dets=False, plot=False)
    assert m['caltech/Reasonable_MR-2'] == pytest.approx(EXPECTED_MR2, abs=1e-6)


def test_scoring_tool_missing_result_file(converted, tmp_path):
    src, _, _, _ = converted
    os.makedirs(tmp_path / 'res' / 'x' / 'set06')
    code, _, err = scoring_cli(tmp_path / 'res' / 'x', '--ann', osp.join(src, 'annotations'))
    assert code == 1 and 'missing result file' in err and 'V000.txt' in err
    with pytest.raises(FileNotFoundError, match=r'V000\.txt'):
        scorer.score_result_dirs([str(tmp_path / 'res' / 'x')], osp.join(src, 'annotations'))


def test_scoring_tool_zero_detections(converted, tmp_path):
    """Empty VYYY.txt files (a detector that finds nothing): MR 100 %, exit 0."""
    src, _, _, _ = converted
    res_dir = tmp_path / 'res' / 'nothing'
    for v in (0, 1):
        caltech_io.write_result_file(str(res_dir / 'set06' / f'V{v:03d}.txt'), np.zeros((0, 6)))
    res = scorer.score_result_dirs([str(res_dir)], osp.join(src, 'annotations'),
                                   ['Reasonable', 'All'])
    assert res['nothing']['Reasonable']['MR-2'] == 1 and res['nothing']['All']['MR-4'] == 1
    assert res['nothing']['Reasonable']['num_gt'] == 2
    code, out_text, err = scoring_cli(res_dir, '--ann', osp.join(src, 'annotations'),
                                      '--out-dir', tmp_path / 'plots')
    assert code == 0, err
    assert out_text.splitlines()[1].split()[1:] == ['100.00', '100.00']


@pytest.mark.parametrize('frame', ['0', '29.5'])
def test_scoring_tool_bad_frame_numbers(converted, tmp_path, frame):
    src, _, _, _ = converted
    res_dir = tmp_path / 'res' / 'zero_based'
    caltech_io.write_result_file(str(res_dir / 'set06' / 'V001.txt'), np.zeros((0, 6)))
    os.makedirs(res_dir / 'set06', exist_ok=True)
    with open(res_dir / 'set06' / 'V000.txt', 'w') as f:
        f.write(f'30,1,2,3,4,.5\n{frame},100,100,41,100,.9\n')
    with pytest.raises(ValueError, match=rf'V000\.txt:2: frame {frame} is not a 1-based frame'):
        scorer.score_result_dirs([str(res_dir)], osp.join(src, 'annotations'))
    code, _, err = scoring_cli(res_dir, '--ann', osp.join(src, 'annotations'))
    assert code == 1 and f'V000.txt:2: frame {frame} is not a 1-based' in err
