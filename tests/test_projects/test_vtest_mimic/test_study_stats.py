"""The study's statistics (projects.vtest_mimic.vtest_mimic.stats: intervals over seeds, the gap
closed) and the Caltech per-frame records and frame bootstrap they use
(mmmimic.evaluation.functional.caltech_records), on tiny generated Caltech-format annotations and
result files."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from mmmimic.datasets import caltech_io as cio
from mmmimic.evaluation.functional import evaluate_caltech, load_ground_truth, score_result_dirs
from mmmimic.evaluation.functional.caltech_records import (Interval, bootstrap_paired,
                                                           load_frame_records, resample_counts)
from projects.vtest_mimic.vtest_mimic.stats import gap_closed, paired_difference, t_interval

SET = 2


def make_scene(root, num_frames=40, seed=0):
    """bbGt annotations of ``num_frames`` frames (every 2nd frame of set02/V000) and an image
    list; each frame has 0-3 persons (h 50-150 px, inside the border), sometimes a small person
    (ignored in Reasonable) and a 'people' ignore region. Returns (ann_dir, img_list, persons)
    with persons[i] the (k, 4) boxes of the Reasonable persons of frame i."""
    rng = np.random.default_rng(seed)
    ann = osp.join(root, 'annotations')
    ids, persons = [], []
    for i in range(num_frames):
        img_id = f'set{SET:02d}_V000_I{2 * i:05d}'
        objs, boxes = [], []
        for _ in range(int(rng.integers(0, 4))):
            h = float(rng.integers(50, 150))
            box = [float(rng.integers(10, 560)), float(rng.integers(10, 470 - int(h))), .41 * h, h]
            objs.append(dict(lbl='person', pos=box))
            boxes.append(box)
        if rng.random() < .3:
            objs.append(dict(lbl='person', pos=[float(rng.integers(10, 600)), 20., 12., 30.]))
        if rng.random() < .3:
            objs.append(dict(lbl='people', pos=[500., 300., 120., 100.]))
        cio.write_bbgt(osp.join(ann, img_id + '.txt'), objs)
        ids.append(img_id)
        persons.append(np.array(boxes).reshape(-1, 4))
    img_list = osp.join(root, 'test.txt')
    with open(img_list, 'w') as f:
        f.write('\n'.join(ids) + '\n')
    return ann, img_list, persons


def make_detections(persons, recall, fp_rate, seed, found=None):
    """Per frame (m, 5) detections: each person found with probability ``recall`` (or where
    ``found`` says) at a jittered box and a high-ish score, plus Poisson(fp_rate) false
    positives at lower scores. Returns (dts, found)."""
    rng = np.random.default_rng(seed)
    dts, found_out = [], []
    for i, boxes in enumerate(persons):
        hit = rng.random(len(boxes)) < recall if found is None else found[i]
        rows = []
        for box, h in zip(boxes, hit):
            if h:
                j = rng.normal(0, 2, 2)
                rows.append([box[0] + j[0], box[1] + j[1], box[2], box[3],
                             rng.uniform(.4, 1.)])
        for _ in range(int(rng.poisson(fp_rate))):
            hh = float(rng.integers(50, 150))
            rows.append([float(rng.integers(0, 600)), float(rng.integers(0, 300)), .41 * hh, hh,
                         rng.uniform(0., .8)])
        dts.append(np.array(rows).reshape(-1, 5))
        found_out.append(hit)
    return dts, found_out


def write_results(res_dir, dts):
    rows = [np.c_[np.full(len(d), 2 * i + 1.), d] for i, d in enumerate(dts)]
    cio.write_result_file(osp.join(res_dir, f'set{SET:02d}', 'V000.txt'), np.concatenate(rows))
    return res_dir


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """A scene, and result folders: 'weak' (recall .6) for seeds 0-2, 'strong' = weak plus a
    detection of 70 % of the persons it missed (same false positives: at least as good on every
    frame, better on many) for the same seeds, and a 'teacher'."""
    root = str(tmp_path_factory.mktemp('scene'))
    ann, img_list, persons = make_scene(root)
    dirs = {}
    for s in range(3):
        weak, found = make_detections(persons, .6, 1.5, seed=10 + s)
        rng = np.random.default_rng(30 + s)
        extra = [~f & (rng.random(len(f)) < .7) for f in found]
        add, _ = make_detections(persons, 1., 0, seed=20 + s, found=extra)
        strong = [np.r_[w, a] for w, a in zip(weak, add)]
        dirs[('weak', s)] = write_results(osp.join(root, 'res', f'weak{s}'), weak)
        dirs[('strong', s)] = write_results(osp.join(root, 'res', f'strong{s}'), strong)
    teacher, _ = make_detections(persons, .95, .5, seed=99)
    dirs['teacher'] = write_results(osp.join(root, 'res', 'teacher'), teacher)
    return dict(ann=ann, img_list=img_list, dirs=dirs, persons=persons)


def _records(scene, *keys, **kwargs):
    return load_frame_records([scene['dirs'][k] for k in keys], scene['ann'], sets=(SET, ),
                              img_list=scene['img_list'], **kwargs)


# --------------------------------------------------------------------------------------------------
# intervals over seeds
# --------------------------------------------------------------------------------------------------
def test_t_interval_against_scipy():
    iv = t_interval([1., 2., 3., 4., 5.])
    # mean 3, sd sqrt(2.5), t_.975,4 = 2.776445: half width 2.776445 * 1.581139 / sqrt(5)
    assert iv.estimate == 3 and iv.n == 5 and iv.method == 't'
    assert iv.lo == pytest.approx(1.036757, abs=1e-6)
    assert iv.hi == pytest.approx(4.963243, abs=1e-6)
    assert iv.std == pytest.approx(math.sqrt(2.5))
    data = [-9.1, -12.7, -4.0, -11.3, -10.2]
    lo, hi = sps.t.interval(.9, 4, loc=np.mean(data), scale=sps.sem(data))
    iv90 = t_interval(data, conf=.9)
    assert (iv90.lo, iv90.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert str(iv90) == f'{np.mean(data):.1f} [{lo:.1f}, {hi:.1f}]' == '-9.5 [-12.6, -6.3]'
    assert iv90.as_dict()['conf'] == .9


def test_t_interval_one_seed_and_bad_values():
    iv = t_interval([41.2])
    assert iv.estimate == 41.2 and math.isnan(iv.lo) and math.isnan(iv.hi) and not iv.ok
    assert iv.format() == '41.2 [no interval: one seed]'
    assert iv.as_dict()['lo'] is None
    with pytest.raises(ValueError, match='no values'):
        t_interval([])
    with pytest.raises(ValueError, match=r'value \[1\] is nan'):
        t_interval([1., float('nan')])
    with pytest.raises(ValueError, match='conf must be in'):
        t_interval([1., 2.], conf=95)


def test_t_interval_coverage():
    """95 % intervals of n=5 normal samples cover the mean 95 % of the time (4000 trials)."""
    rng = np.random.default_rng(1)
    samples = rng.normal(10., 3., size=(4000, 5))
    covered = [iv.lo <= 10 <= iv.hi for iv in map(t_interval, samples)]
    assert np.mean(covered) == pytest.approx(.95, abs=.012)


def test_paired_difference():
    a = {0: 40., 1: 35., 2: 38.}
    b = {2: 41., 0: 45., 1: 37.}
    iv = paired_difference(a, b)
    ref = t_interval([-5., -2., -3.])
    assert iv == ref and iv.estimate == pytest.approx(-10 / 3)
    with pytest.raises(ValueError, match=r'only in a: \[2\]; only in b: \[3\]'):
        paired_difference(a, {0: 1., 1: 2., 3: 3.})


# --------------------------------------------------------------------------------------------------
# per-frame records
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('setting,log_floor', [('Reasonable', None), ('All', 1e-10)])
def test_records_reproduce_score_result_dirs(scene, setting, log_floor):
    keys = [('weak', 0), ('strong', 1), 'teacher']
    records = _records(scene, *keys, setting=setting, log_floor=log_floor)
    scored = score_result_dirs([scene['dirs'][k] for k in keys], scene['ann'], [setting],
                               sets=(SET, ), img_list=scene['img_list'], log_floor=log_floor,
                               names=['a', 'b', 'c'])
    for rec, name in zip(records, 'abc'):
        ref = scored[name][setting]
        assert rec.num_frames == ref['num_images'] == 40
        assert rec.gt_per_frame.sum() == ref['num_gt']
        for metric, key in (('MR-2', 'MR-2'), ('MR-4', 'MR-4'), ('AP', 'AP')):
            assert rec.value(metric) == pytest.approx(100 * ref[key], abs=1e-9)
        assert 0 < ref['MR-2'] < 1 and 0 < ref['AP'] < 1  # not a degenerate case


def test_weighted_values_equal_an_explicit_multiset(scene):
    """Counts (frame 3 three times, frames 0-9 not at all) give the metric of that list of
    frames evaluated from scratch."""
    rec, = _records(scene, ('weak', 0))
    frames, gts = load_ground_truth(scene['ann'], (SET, ), scene['img_list'])
    from mmmimic.evaluation.functional import load_detections
    dts = load_detections(scene['dirs'][('weak', 0)], frames)
    counts = np.ones(40)
    counts[:10] = 0
    counts[3] = 3
    counts[17] = 2
    picked = [i for i in range(40) for _ in range(int(counts[i]))]
    ref = evaluate_caltech([gts[i] for i in picked], [dts[i] for i in picked])['Reasonable']
    got = {m: rec.values(m, counts[None])[0] for m in ('MR-2', 'MR-4', 'AP')}
    assert got['MR-2'] == pytest.approx(100 * ref['MR-2'], abs=1e-9)
    assert got['MR-4'] == pytest.approx(100 * ref['MR-4'], abs=1e-9)
    assert got['AP'] == pytest.approx(100 * ref['AP'], abs=1e-9)
    # and bootstrap draws, several in one call
    draws = resample_counts(rec.frames, 6, seed=5)
    got = {m: rec.values(m, draws) for m in ('MR-2', 'AP')}
    for b, row in enumerate(draws):
        picked = [i for i in range(40) for _ in range(int(row[i]))]
        ref = evaluate_caltech([gts[i] for i in picked], [dts[i] for i in picked])['Reasonable']
        assert got['MR-2'][b] == pytest.approx(100 * ref['MR-2'], abs=1e-9)
        assert got['AP'][b] == pytest.approx(100 * ref['AP'], abs=1e-9)
    assert len(set(got['MR-2'].round(6))) > 3  # the draws differ
    # a resample without any gt: NaN; a bad counts shape names the expected one
    assert np.isnan(rec.values('MR-2', (rec.gt_per_frame == 0)[None].astype(float))[0])
    with pytest.raises(ValueError, match=r'counts must have shape \(B, 40\), got \(2, 39\)'):
        rec.values('MR-2', np.ones((2, 39)))
    with pytest.raises(KeyError, match="unknown metric 'MR-3'"):
        rec.values('MR-3')


def test_records_without_detections(scene, tmp_path):
    empty = write_results(str(tmp_path / 'res' / 'empty'), [np.zeros((0, 5))] * 40)
    rec, = load_frame_records([empty], scene['ann'], sets=(SET, ), img_list=scene['img_list'])
    assert len(rec.det_frame) == 0
    counts = resample_counts(rec.frames, 5)
    np.testing.assert_array_equal(rec.values('MR-2', counts), 100.)
    np.testing.assert_array_equal(rec.values('AP', counts), 0.)


def test_load_frame_records_bad_inputs(scene, tmp_path):
    with pytest.raises(KeyError, match="unknown Caltech setting 'Resonable'"):
        load_frame_records([scene['dirs']['teacher']], scene['ann'], 'Resonable', sets=(SET, ))
    with pytest.raises(FileNotFoundError, match=r'missing result file .*set02.V000\.txt'):
        load_frame_records([str(tmp_path / 'nothing')], scene['ann'], sets=(SET, ),
                           img_list=scene['img_list'])


# --------------------------------------------------------------------------------------------------
# frame bootstrap
# --------------------------------------------------------------------------------------------------
def test_resample_counts_blocks_and_determinism():
    frames = [(2, 0, 2 * i) for i in range(10)] + [(2, 1, 2 * i) for i in range(5)]
    c = resample_counts(frames, 200, seed=3)
    assert c.shape == (200, 15) and np.all(c.sum(axis=1) == 15)
    np.testing.assert_array_equal(c, resample_counts(frames, 200, seed=3))
    assert not np.array_equal(c, resample_counts(frames, 200, seed=4))
    # blocks of 4 consecutive frames per video: V000 -> 4, 4, 2; V001 -> 4, 1 (5 blocks)
    b = resample_counts(list(reversed(frames)), 300, seed=0, block=4)  # input order irrelevant
    b = b[:, ::-1]
    for lo, hi in ((0, 4), (4, 8), (8, 10), (10, 14), (14, 15)):
        assert np.all(b[:, lo:hi] == b[:, lo:lo + 1])
    draws = b[:, [0, 4, 8, 10, 14]]
    assert np.all(draws.sum(axis=1) == 5)  # 5 blocks drawn per resample
    assert draws.mean() == pytest.approx(1., abs=.1)
    with pytest.raises(ValueError, match='block must be >= 1'):
        resample_counts(frames, 10, block=0)


def test_bootstrap_better_on_every_frame(scene):
    """'strong' = 'weak' plus detections of persons weak missed: never worse on a frame, so
    MR-2 is lower and AP higher on every resample, and the intervals exclude 0."""
    weak = dict(enumerate(_records(scene, *[('weak', s) for s in range(3)])))
    strong = dict(enumerate(_records(scene, *[('strong', s) for s in range(3)])))
    iv = bootstrap_paired(strong, weak, 'MR-2', n_boot=300)
    assert iv.method == 'bootstrap' and iv.n == 300 and iv.ok
    assert iv.lo <= iv.estimate <= iv.hi < 0
    expected = np.mean([strong[s].value() - weak[s].value() for s in range(3)])
    assert iv.estimate == pytest.approx(expected, abs=1e-12)
    ap = bootstrap_paired(strong, weak, 'AP', n_boot=300, block=5)
    assert 0 < ap.lo <= ap.estimate <= ap.hi
    # deterministic given the seed; another seed moves the bounds
    assert bootstrap_paired(strong, weak, 'MR-2', n_boot=300) == iv
    assert bootstrap_paired(strong, weak, 'MR-2', n_boot=300, seed=1).lo != iv.lo
    # blocks of consecutive frames (neighbours alike): a wider interval here is not guaranteed,
    # but it must still exclude 0
    assert bootstrap_paired(strong, weak, 'MR-2', n_boot=300, block=8).hi < 0


def test_bootstrap_identical_models_gives_zero(scene):
    weak = dict(enumerate(_records(scene, *[('weak', s) for s in range(3)])))
    iv = bootstrap_paired(weak, dict(weak), 'MR-4', n_boot=100)
    assert (iv.estimate, iv.lo, iv.hi) == (0, 0, 0)


def test_bootstrap_refuses_mismatched_inputs(scene, tmp_path):
    weak = dict(enumerate(_records(scene, *[('weak', s) for s in range(3)])))
    with pytest.raises(ValueError, match=r'only in records_a: \[2\]'):
        bootstrap_paired(weak, {0: weak[0], 1: weak[1]})
    with pytest.raises(TypeError, match=r'records_b must be a \{seed: FrameRecords\} dict'):
        bootstrap_paired(weak, list(weak.values()))
    with pytest.raises(TypeError, match=r'records_b\[1\] is a float, not FrameRecords'):
        bootstrap_paired(weak, {0: weak[0], 1: 40.1, 2: weak[2]})
    # records on fewer frames
    short = str(tmp_path / 'short.txt')
    with open(scene['img_list']) as f, open(short, 'w') as g:
        g.writelines(f.readlines()[:30])
    other, = load_frame_records([scene['dirs'][('weak', 0)]], scene['ann'], sets=(SET, ),
                                img_list=short)
    with pytest.raises(ValueError, match=r'records_b\[0\] .* other frames .* 30 vs 40 frames'):
        bootstrap_paired({0: weak[0]}, {0: other})


# --------------------------------------------------------------------------------------------------
# share of the gap closed
# --------------------------------------------------------------------------------------------------
def test_gap_closed(scene):
    weak = dict(enumerate(_records(scene, *[('weak', s) for s in range(3)])))
    strong = dict(enumerate(_records(scene, *[('strong', s) for s in range(3)])))
    teacher, = _records(scene, 'teacher')
    t = teacher.value()
    sc = np.array([weak[s].value() for s in range(3)])
    mi = np.array([strong[s].value() for s in range(3)])
    assert np.all(sc - t > 1)  # the premise of this scene
    g = gap_closed(weak, strong, teacher, n_boot=300)
    assert g.reason == '' and g.gap == pytest.approx(sc.mean() - t)
    assert g.estimate == pytest.approx(100 * (sc.mean() - mi.mean()) / (sc.mean() - t))
    assert g.seeds == t_interval(100 * (sc - mi) / (sc - t))
    assert g.frames.method == 'bootstrap' and g.frames.lo <= g.estimate <= g.frames.hi
    assert g.frames.lo > 0
    assert g.format().startswith(f'{g.estimate:.0f} % (seeds [')
    d = json.loads(json.dumps(g.as_dict()))
    assert d['seeds']['method'] == 't' and d['frames']['n'] == 300
    assert d['estimate'] == pytest.approx(g.estimate)
    # the teacher is not better than the scratch student: no share, the reason says so
    none = gap_closed(strong, weak, weak[0], n_boot=50, min_gap=1.)
    assert none.estimate is None and none.seeds is None and none.frames is None
    assert 'is not better than the scratch student' in none.reason
    assert none.format().startswith('n/a (the teacher (')
    assert none.as_dict()['seeds'] is None and none.as_dict()['reason'] == none.reason
    with pytest.raises(ValueError, match='lower-is-better metric'):
        gap_closed(weak, strong, teacher, metric='AP')


def test_interval_format_digits():
    iv = Interval(-9.54, -14.06, -4.94, 5, 't')
    assert iv.format() == '-9.5 [-14.1, -4.9]' and iv.format(2) == '-9.54 [-14.06, -4.94]'


def test_stats_import_without_torch():
    """The statistics load numpy/scipy only (MMMIMIC_LIGHT_IMPORT=1), like the scoring core."""
    code = ('import sys\n'
            'from mmmimic.evaluation.functional.caltech_records import bootstrap_paired, '
            'load_frame_records\n'
            'from projects.vtest_mimic.vtest_mimic.stats import gap_closed, t_interval\n'
            'print(sorted(m for m in ("torch", "mmdet", "mmengine", "mmcv", "matplotlib") '
            'if m in sys.modules))\n')
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    proc = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True,
                          env=dict(os.environ, MMMIMIC_LIGHT_IMPORT='1'), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'
