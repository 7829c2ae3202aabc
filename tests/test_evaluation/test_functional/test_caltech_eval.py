"""The Caltech evaluation core against the vectors T1-T8 of CALTECH_EVAL.md, the loop
transcription of the toolbox, and per-stage rules."""
import math

import numpy as np
import pytest

from mmmimic.evaluation.functional import (CALTECH_SETTINGS, evaluate_caltech, filter_detections,
                                           filter_gt, log_average, log_average_miss_rate,
                                           match_detections, miss_rates_at, reference_points,
                                           standardize_aspect)
from mmmimic.testing.caltech_loop import evaluate_caltech_loop, log_average_miss_rate_loop

G = [0, 0, 41, 100, 0]


def A(rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def t5():
    gts = [A([G])] * 100
    dts = [
        A([[400, 0, 41, 100, .9 - i / 1000]] + ([[0, 0, 41, 100, .5 + i / 1000]] if i < 50 else []))
        for i in range(100)
    ]
    return gts, dts


def t6():
    rows = [[] for _ in range(100)]
    for i in range(80):
        rows[i].append([0, 0, 41, 100, .99 - .01 * i])
    for k in range(50):
        rows[(7 * k) % 100].append([400, 0, 41, 100, .995 - .01 * k])
    return [A([G])] * 100, [A(r) for r in rows]


CASES = {
    'T1': ([A([G])], [A([0, 0, 41, 100, .9])], 0., 1e-10),
    'T2': ([A([G])], [A([[300, 0, 41, 100, .9], [0, 0, 41, 100, .8]])], 0., 0.077426),
    'T3': ([A([G, [200, 0, 100, 100, 1]])], [A([[210, 10, 20, 50, .95], [0, 0, 41, 100, .8]])],
           0., 1e-10),
    'T4': ([A([G])], [A([])], 1., 1.),
    'T5': t5() + (0.925875, 0.925875),
    'T6': t6() + (0.642358, 0.642358),
    'T8': ([A([G, [200, 0, 41, 100, 0]])],
           [A([[300, 0, 41, 100, .9], [0, 0, 41, 100, .8], [500, 0, 41, 100, .7],
               [200, 0, 41, 100, .6]])], 0.925875, 0.925875),
}


@pytest.mark.parametrize('name', sorted(CASES))
@pytest.mark.parametrize('floor', [None, 1e-10])
def test_vectors(name, floor):
    gts, dts, expected, expected_floor = CASES[name]
    mr, mrs = log_average_miss_rate(gts, dts, log_floor=floor)
    exp = expected if floor is None else expected_floor
    assert mr == pytest.approx(exp, abs=5e-7, rel=1e-6)
    mr_loop, mrs_loop = log_average_miss_rate_loop(gts, dts, log_floor=floor)
    np.testing.assert_array_equal(mrs, mrs_loop)
    assert mr == pytest.approx(mr_loop, rel=1e-12, abs=1e-300)


def test_t2_miss_rates():
    _, mrs = log_average_miss_rate(*CASES['T2'][:2])
    np.testing.assert_array_equal(mrs, [1] * 8 + [0])


def test_t6_mr4():
    mr, _ = log_average_miss_rate(*t6(), fppi_range=(-4, 0))
    assert mr == pytest.approx(0.789573, abs=5e-7)
    assert log_average_miss_rate(*t6(), fppi_range=(-4, 0), log_floor=1e-10)[0] == mr


def test_t7_iou_exactly_half_is_tp():
    status, gt_matched, _ = match_detections([0], [G[:4]], [False], [0], [[0, 0, 41, 50]], [.9], 1)
    assert status.tolist() == [1] and gt_matched.tolist() == [True]
    mr, _ = log_average_miss_rate([A([G])], [A([0, 0, 41, 50, .9])])
    assert mr == 0


def test_reference_points_exact():
    # an FPPI of exactly 0.1 must be <= the 10^-1 reference (numpy's vector pow misses it)
    refs = reference_points((-2, 0), 9)
    assert refs[0] == 0.01 and refs[4] == 0.1 and refs[8] == 1.0
    np.testing.assert_allclose(reference_points((-4, 0), 9), 10.0**np.arange(-4, 0.01, .5))


def test_matching_rules():
    # later equal overlap replaces an earlier one; the gt that is taken is the last of the max
    gts = [[0, 0, 10, 10], [0, 0, 10, 10]]
    status, matched, _ = match_detections([0, 0], gts, [False, False], [0], [[0, 0, 10, 10]], [1.],
                                          1)
    assert status.tolist() == [1] and matched.tolist() == [False, True]
    # an ignore region absorbs any number of detections (intersection over detection area)
    status, matched, _ = match_detections([0], [[0, 0, 100, 100]], [True], [0, 0, 0],
                                          [[10, 10, 5, 5], [20, 20, 5, 5], [200, 0, 5, 5]],
                                          [.9, .8, .7], 1)
    assert status.tolist() == [-1, -1, 0] and matched.tolist() == [False]
    # a non-ignore match wins over an ignore region even when the ignore region comes first
    status, _, _ = match_detections([0, 0], [[0, 0, 100, 100], [0, 0, 10, 10]], [True, False], [0],
                                    [[0, 0, 10, 10]], [.9], 1)
    assert status.tolist() == [1]
    # the higher score takes the gt, whatever the input order; ties keep input order
    status, _, _ = match_detections([0], [[0, 0, 10, 10]], [False], [0, 0], [[0, 0, 10, 10]] * 2,
                                    [.5, .9], 1)
    assert status.tolist() == [0, 1]
    status, _, _ = match_detections([0], [[0, 0, 10, 10]], [False], [0, 0], [[0, 0, 10, 10]] * 2,
                                    [.5, .5], 1)
    assert status.tolist() == [1, 0]
    # a detection whose best gt is taken falls back to the next candidate
    status, matched, _ = match_detections([0, 0], [[0, 0, 10, 10], [2, 0, 10, 10]], [False, False],
                                          [0, 0], [[0, 0, 10, 10], [1, 0, 10, 10]], [.9, .8], 1)
    assert status.tolist() == [1, 1] and matched.tolist() == [True, True]


def _random_images(rng, n_img, contested=True):
    gts, dts = [], []
    for _ in range(n_img):
        k = int(rng.integers(0, 5))
        g = np.c_[rng.integers(0, 60, (k, 2)), rng.integers(5, 30, (k, 2)), rng.random(k) < .3]
        m = int(rng.integers(0, 12))
        if k:
            base = g[rng.integers(0, k, m), :4] + rng.integers(-4, 5, (m, 4))
        else:
            base = np.c_[rng.integers(0, 60, (m, 2)), rng.integers(5, 30, (m, 2))]
        base[:, 2:] = np.maximum(base[:, 2:], 1)
        gts.append(g.astype(float).reshape(-1, 5))
        dts.append(np.c_[base, np.round(rng.random(m), 1)].astype(float).reshape(-1, 5))
    return gts, dts


@pytest.mark.parametrize('iou_thr', [.25, .5, .75])
def test_random_against_loop_transcription(iou_thr):
    """Many small images with crowded, tied detections: identical miss rates to the loops."""
    rng = np.random.default_rng(int(iou_thr * 100))
    for _ in range(60):
        gts, dts = _random_images(rng, int(rng.integers(1, 8)))
        for fr in ((-2, 0), (-4, 0)):
            mr, mrs = log_average_miss_rate(gts, dts, iou_thr=iou_thr, fppi_range=fr)
            mr_l, mrs_l = log_average_miss_rate_loop(gts, dts, iou_thr=iou_thr, fppi_range=fr)
            if math.isnan(mr):
                assert all(g[:, 4].all() for g in gts)
                continue
            np.testing.assert_array_equal(mrs, mrs_l)


def test_miss_rate_curve_edges():
    refs = reference_points()
    # no detections: 1 everywhere
    np.testing.assert_array_equal(miss_rates_at(np.zeros(0), np.zeros(0), refs), np.ones(9))
    # curve starts above the first reference: miss rate 1 there (not the final recall)
    mrs = miss_rates_at(np.array([0.5, 0.5]), np.array([0., 1.]), refs)
    np.testing.assert_array_equal(mrs, [1] * 7 + [0, 0])
    # curve ends before a reference: its last miss rate is used
    mrs = miss_rates_at(np.array([0.]), np.array([.25]), refs)
    np.testing.assert_array_equal(mrs, [.75] * 9)
    assert log_average([0, 1]) == 0
    assert log_average([0, 1], log_floor=1e-10) == pytest.approx(1e-5)


def test_no_gt_gives_nan():
    mr, mrs = log_average_miss_rate([A([[0, 0, 41, 100, 1]])], [A([0, 0, 41, 100, .9])])
    assert math.isnan(mr) and np.isnan(mrs).all()


def test_bad_shapes_name_the_input():
    with pytest.raises(ValueError, match=r'dts\[1\].*\(n, 5\)'):
        log_average_miss_rate([A([G])] * 2, [A([]), np.zeros((2, 4))])
    with pytest.raises(ValueError, match='2 images'):
        log_average_miss_rate([A([G])] * 2, [A([])])


# ----------------------------------------------------------------------------------------- stages
def _filter(bboxes, vis=None, labels=None, setting='Reasonable', **kw):
    bboxes = np.array(bboxes, float).reshape(-1, 4)
    vis = np.zeros_like(bboxes) if vis is None else np.array(vis, float).reshape(-1, 4)
    labels = ['person'] * len(bboxes) if labels is None else labels
    s = CALTECH_SETTINGS[setting]
    return filter_gt(bboxes, vis, labels, s['height_range'], s['vis_range'], s['aspect_range'],
                     **kw)


def test_filter_gt_labels():
    keep, ign = _filter([[100, 100, 30, 60]] * 5,
                        labels=['person', 'person?', 'people', 'ignore', 'person-fa'])
    assert keep.tolist() == [True, True, True, True, False]
    assert ign[:4].tolist() == [False, True, True, True]


def test_filter_gt_height_is_half_open():
    keep, ign = _filter([[100, 100, 20, 49.99], [100, 100, 20, 50], [100, 100, 20, 300]])
    assert ign.tolist() == [True, False, False]
    keep, ign = _filter([[100, 100, 20, 30], [100, 100, 20, 79.9], [100, 100, 20, 80]],
                        setting='Scale=medium')
    assert ign.tolist() == [False, False, True]


def test_filter_gt_border():
    boxes = [[5, 5, 30, 60], [4.9, 5, 30, 60], [605, 100, 30, 60], [605.1, 100, 30, 60],
             [100, 415, 30, 60], [100, 415.1, 30, 60], [100, 4, 30, 60]]
    _, ign = _filter(boxes)
    assert ign.tolist() == [False, True, False, True, False, True, True]
    _, ign = _filter(boxes, border=None)
    assert not ign.any()


def test_filter_gt_visibility():
    box = [100, 100, 40, 100]
    vis = [[0, 0, 0, 0], [100, 100, 40, 65], [100, 100, 40, 64], [100, 100, 40, 100]]
    _, ign = _filter([box] * 4, vis)  # Reasonable: vf in [.65, inf], vf=inf when no posv
    assert ign.tolist() == [False, False, True, False]
    _, ign = _filter([box] * 4, vis, setting='Occ=none')  # only boxes without posv
    assert ign.tolist() == [False, True, True, True]
    _, ign = _filter([box] * 4, vis, setting='Occ=partial')  # [.65, 1]
    assert ign.tolist() == [True, False, True, False]
    _, ign = _filter([box] * 4, vis, setting='Occ=heavy')  # [.2, .65]
    assert ign.tolist() == [True, False, False, True]


def test_filter_gt_aspect_and_ign_column():
    _, ign = _filter([[100, 100, 41, 100], [100, 100, 60, 100]], setting='Ar=typical')
    assert ign.tolist() == [False, True]
    _, ign = _filter([[100, 100, 41, 100], [100, 100, 60, 100]], setting='Ar=atypical')
    assert ign.tolist() == [True, False]
    _, ign = _filter([[100, 100, 41, 100]] * 2, ignore=[0, 1])
    assert ign.tolist() == [False, True]


def test_standardize_aspect():
    out = standardize_aspect(np.array([[10., 20., 30., 100., .7]]))
    np.testing.assert_allclose(out, [[10 - (41 - 30) / 2, 20, 41, 100, .7]])
    assert out[0, 2] == 30 + (100 * .41 - 30)  # bbApply's float operations, not 0.41*h
    assert standardize_aspect(np.zeros((0, 4))).shape == (0, 4)


def test_filter_detections_height():
    d = np.array([[0, 0, 10, 39.99], [0, 0, 10, 40], [0, 0, 10, 1000]])
    assert filter_detections(d, (50, np.inf)).tolist() == [False, True, True]
    d = np.array([[0, 0, 10, 23.9], [0, 0, 10, 24], [0, 0, 10, 99.9], [0, 0, 10, 100]])
    assert filter_detections(d, (30, 80)).tolist() == [False, True, True, False]


def _raw_images(rng, n_img):
    gts, dts = [], []
    for _ in range(n_img):
        k = int(rng.integers(0, 4))
        h = rng.uniform(15, 140, k)
        xy = np.c_[rng.uniform(-5, 600, k), rng.uniform(0, 470 - h)]
        bb = np.c_[xy, h * rng.uniform(.3, .6, k), h]
        vis = np.where(rng.random((k, 1)) < .6, 0, bb * [1, 1, 1, .1] + [0, 0, 0, 1] * bb * .8 *
                       rng.random((k, 1)))
        lbl = list(rng.choice(['person', 'person', 'person', 'people', 'person?', 'person-fa'], k))
        gts.append(dict(bboxes=bb, bboxes_vis=vis, labels=lbl))
        m = int(rng.integers(0, 8))
        src = bb[rng.integers(0, k, m)] if k else np.tile([[300, 200, 30, 70]], (m, 1))
        d = src * rng.uniform(.9, 1.1, (m, 4)) + rng.normal(0, 3, (m, 4))
        dts.append(np.c_[d, rng.random(m)])
    return gts, dts


@pytest.mark.parametrize('resize_dets', [True, False])
def test_evaluate_caltech_against_loop_pipeline(resize_dets):
    rng = np.random.default_rng(7)
    gts, dts = _raw_images(rng, 150)
    names = ['Reasonable', 'All', 'Scale=far', 'Occ=partial', 'Overlap=75']
    res = evaluate_caltech(gts, dts, names, resize_dets=resize_dets)
    ref = evaluate_caltech_loop(gts, dts, [dict(name=n, **CALTECH_SETTINGS[n]) for n in names],
                                resize_dets=resize_dets)
    for n in names:
        assert res[n]['MR-2'] == pytest.approx(ref[n][0], rel=1e-12)
        assert res[n]['MR-4'] == pytest.approx(ref[n][1], rel=1e-12)
        assert res[n]['num_images'] == 150


def test_evaluate_caltech_custom_setting_and_unknown():
    gts = [dict(bboxes=[[100, 100, 41, 100]], bboxes_vis=[[0, 0, 0, 0]], labels=['person'])]
    dts = [np.array([[100, 100, 41, 100, .9]])]
    res = evaluate_caltech(gts, dts, [dict(name='tall', height_range=(90, 200),
                                           vis_range=(.5, np.inf))])
    assert res['tall']['MR-2'] == 0 and res['tall']['num_gt'] == 1
    with pytest.raises(KeyError, match='Reasonabel'):
        evaluate_caltech(gts, dts, ['Reasonabel'])


def test_crowded_images_are_matched_in_groups(monkeypatch):
    """A tiny dense-array limit forces the grouped path; results must not change."""
    from mmmimic.evaluation.functional import caltech_eval
    rng = np.random.default_rng(3)
    gts, dts = _random_images(rng, 40)
    gts.append(A([[10 * i, 0, 41, 100, 0] for i in range(20)]))
    dts.append(A([[10 * (i % 20) + rng.integers(-3, 4), 0, 41, 100, rng.random()]
                  for i in range(200)]))
    expected = log_average_miss_rate_loop(gts, dts)[1]
    monkeypatch.setattr(caltech_eval, 'MAX_DENSE_CELLS', 50)
    np.testing.assert_array_equal(log_average_miss_rate(gts, dts)[1], expected)


# ------------------------------------------------------------------------------------- bad inputs
def _one_person(n_img=3):
    return [dict(bboxes=[[100, 100, 41, 100]], bboxes_vis=[[0, 0, 0, 0]], labels=['person'])
            for _ in range(n_img)]


def test_zero_detections_give_mr_100():
    """A detector that finds nothing: MR 100 %, recall 0, no crash (issue 10)."""
    res = evaluate_caltech(_one_person(), [np.zeros((0, 5))] * 3, ['Reasonable', 'All'])
    for name in ('Reasonable', 'All'):
        r = res[name]
        assert r['MR-2'] == 1 and r['MR-4'] == 1 and r['num_dets'] == 0 and r['num_gt'] == 3
        np.testing.assert_array_equal(r['miss_rates']['MR-2'], np.ones(9))
        assert len(r['fppi']) == 0 and len(r['miss_rate']) == 0
    # detections that the height filter removes entirely are the same case
    res = evaluate_caltech(_one_person(1), [np.array([[100, 100, 4, 10, .9]])])
    assert res['Reasonable']['MR-2'] == 1 and res['Reasonable']['num_dets'] == 0
    mr, mrs = log_average_miss_rate([A([G])] * 2, [A([])] * 2)
    assert mr == 1 and mrs.tolist() == [1.] * 9
    assert filter_detections(np.zeros((0, 5)), (50, np.inf)).shape == (0, )


def test_zero_images_and_zero_gts():
    res = evaluate_caltech([dict(bboxes=[], bboxes_vis=[], labels=[])], [np.zeros((0, 5))])
    assert math.isnan(res['Reasonable']['MR-2']) and res['Reasonable']['num_gt'] == 0


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_detections_are_refused(bad):
    dts = [np.array([[100, 100, 41, 100, .9]]), np.array([[1, 2, 3, 4, bad], [1, bad, 3, 4, .1]]),
           np.zeros((0, 5))]
    with pytest.raises(ValueError, match=r'dts\[1\] \(image set06_V000_I00059\): 2 of 2 '
                                         r'detections have NaN/inf'):
        evaluate_caltech(_one_person(), dts,
                         img_ids=['set06_V000_I00029', 'set06_V000_I00059', 'set06_V000_I00089'])
    with pytest.raises(ValueError, match=r'dts\[1\]: 2 of 2 detections have NaN/inf'):
        evaluate_caltech(_one_person(), dts)
    with pytest.raises(ValueError, match=r'dts\[1\]: 2 of 2 detections have NaN/inf'):
        log_average_miss_rate([A([G])] * 3, [A([[0, 0, 41, 100, .9]]), dts[1], A([])])


def test_non_finite_ground_truth_is_refused():
    gts = _one_person()
    gts[2] = dict(bboxes=[[100, 100, 41, np.nan]], bboxes_vis=[[0, 0, 0, 0]], labels=['person'])
    with pytest.raises(ValueError, match=r'gts\[2\]: 1 of 1 boxes have NaN/inf'):
        evaluate_caltech(gts, [np.zeros((0, 5))] * 3)
