"""Average precision of the Caltech evaluation (issue 13): the same matched detections as the miss
rate, all-point interpolation, tied scores entering together; checked against hand computations."""
import math

import numpy as np
import pytest

from mmmimic.evaluation.functional import (ap_from_counts, average_precision, evaluate_caltech,
                                           match_caltech)


def _gt(rows):
    """rows: (label, [x, y, w, h]); no visible boxes."""
    return dict(bboxes=np.array([r[1] for r in rows], np.float64).reshape(-1, 4),
                bboxes_vis=np.zeros((len(rows), 4)), labels=[r[0] for r in rows])


def hand_case():
    """Three frames. Frame 0: persons A, B, a 30 px person (ignored in Reasonable, counted in
    All) and a 'people' ignore region; frame 1: person C; frame 2: no gt.

    Detections (41x100, unchanged by the 0.41 resize):
      .9 frame 0 on A -> TP        .9 frame 1 on nothing -> FP   (tie of a TP and a FP)
      .8 frame 0 on A again -> FP  (A is taken)
      .7 frame 0 inside the 'people' region -> ignored (dropped from the curve)
      .6 frame 0 on B -> TP        .6 frame 1 on C -> TP         (tie of two TPs)
      .3 frame 2 -> FP
    """
    gts = [_gt([('person', [100, 100, 41, 100]), ('person', [300, 100, 41, 100]),
                ('person', [200, 300, 12, 30]), ('people', [500, 100, 100, 100])]),
           _gt([('person', [100, 200, 41, 100])]),
           _gt([])]
    dts = [np.array([[100, 100, 41, 100, .9], [100, 100, 41, 100, .8],
                     [520, 100, 41, 100, .7], [300, 100, 41, 100, .6]]),
           np.array([[400, 200, 41, 100, .9], [100, 200, 41, 100, .6]]),
           np.array([[200, 200, 41, 100, .3]])]
    return gts, dts


def test_ap_hand_computation_with_ignore_regions_and_ties():
    gts, dts = hand_case()
    res = evaluate_caltech(gts, dts, ['Reasonable', 'All'])
    # Reasonable, 3 gts. Points at each distinct score (tp, fp): .9 (1, 1) P=1/2 R=1/3;
    # .8 (1, 2) P=1/3; .6 (3, 2) P=3/5 R=1; .3 (3, 3) P=1/2. Monotone precision: 3/5 at both
    # recall steps -> AP = 1/3 * 3/5 + 2/3 * 3/5 = 3/5. (Toolbox order inside the .9 tie, TP
    # first, would give 11/15; counting the ignored .7 detection as a FP would give 1/2.)
    assert res['Reasonable']['AP'] == pytest.approx(3 / 5, abs=1e-12)
    assert res['Reasonable']['num_gt'] == 3 and res['Reasonable']['iou_thr'] == .5
    # All counts the 30 px person too (4 gts, never detected): 1/4 * 3/5 + 2/4 * 3/5 = 9/20
    assert res['All']['num_gt'] == 4
    assert res['All']['AP'] == pytest.approx(9 / 20, abs=1e-12)


def test_ap_from_the_matches_and_weighted_counts():
    gts, dts = hand_case()
    m = match_caltech(gts, dts, ['Reasonable'])['Reasonable']
    np.testing.assert_array_equal(m['gt_per_image'], [2, 1, 0])
    # status by detection (frames concatenated): TP FP ignored TP | FP TP | FP
    np.testing.assert_array_equal(m['dt_status'], [1, 0, -1, 1, 0, 1, 0])
    assert average_precision(m['dt_status'], m['dt_scores'], 3) == pytest.approx(.6, abs=1e-12)
    # the input order of the detections does not matter, ties included
    perm = np.array([6, 4, 2, 0, 5, 3, 1])
    assert average_precision(m['dt_status'][perm], m['dt_scores'][perm], 3) == pytest.approx(.6)
    # weighted counts: frame 1 drawn twice, frame 2 never. Points (tp, fp): .9 (1, 2) P=1/3;
    # .8 (1, 3) P=1/4; .6 (4, 3) P=4/7, 5 gts: AP = 1/5 * 4/7 + 3/5 * 4/7 = 16/35;
    # a second curve in the same call (unit weights) gives 3/5
    cum_tp = np.array([[1, 1, 4, 4], [1, 1, 3, 3]])
    cum_fp = np.array([[2, 3, 3, 3], [1, 2, 2, 3]])
    np.testing.assert_allclose(ap_from_counts(cum_tp, cum_fp, np.array([5, 3])),
                               [16 / 35, 3 / 5], atol=1e-12)


def test_ap_edge_cases():
    gts, dts = hand_case()
    # no detection at all: AP 0 (MR 100 %)
    r = evaluate_caltech(gts, [np.zeros((0, 5))] * 3)['Reasonable']
    assert r['AP'] == 0 and r['MR-2'] == 1
    # every detection matched to an ignore region: nothing counted, AP 0
    r = evaluate_caltech(gts, [np.array([[520, 100, 41, 100, .7]]), np.zeros((0, 5)),
                               np.zeros((0, 5))])['Reasonable']
    assert r['AP'] == 0 and r['num_dets'] == 1
    # no non-ignore gt: AP undefined (NaN), like MR-2
    r = evaluate_caltech([_gt([('people', [500, 100, 100, 100])])],
                         [np.array([[100, 100, 41, 100, .9]])])['Reasonable']
    assert math.isnan(r['AP']) and math.isnan(r['MR-2'])
    assert average_precision(np.zeros(0, np.int8), np.zeros(0), 0) != 0  # NaN
    # all detections TP above all FPs: AP 1 whatever the FPs
    assert average_precision(np.array([1, 1, 0, 0]), np.array([.9, .8, .7, .1]), 2) == 1
    # half the gts found at precision 1, nothing else: AP 1/2
    assert average_precision(np.array([1]), np.array([.5]), 2) == .5
    with pytest.raises(ValueError, match=r'dt_status \(2,\) and dt_scores \(1,\)'):
        average_precision(np.array([1, 0]), np.array([.5]), 2)
    with pytest.raises(ValueError, match=r'cum_tp \(2,\) and cum_fp \(3,\)'):
        ap_from_counts(np.ones(2), np.ones(3), 2)


def test_ap_random_against_a_loop():
    """The vectorised AP against a plain loop over distinct thresholds on random matches."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = int(rng.integers(1, 60))
        status = rng.choice([-1, 0, 1], size=m, p=[.1, .5, .4]).astype(np.int8)
        scores = rng.integers(0, 8, size=m) / 8  # many ties
        num_gt = int((status == 1).sum() + rng.integers(0, 4))
        expected = 0.
        if num_gt:
            thr = sorted(set(scores[status != -1].tolist()), reverse=True)
            prec, rec = [], []
            for t in thr:
                sel = (scores >= t) & (status != -1)
                tp = int((status[sel] == 1).sum())
                prec.append(tp / int(sel.sum()))
                rec.append(tp / num_gt)
            prev = 0.
            for k in range(len(thr)):
                expected += (rec[k] - prev) * max(prec[k:])
                prev = rec[k]
            assert average_precision(status, scores, num_gt) == pytest.approx(expected,
                                                                              abs=1e-12)
        else:
            assert math.isnan(average_precision(status, scores, num_gt))


def test_evaluate_caltech_ap_equals_average_precision_of_its_matches():
    """evaluate_caltech reuses the curve's sort for AP; it must equal average_precision on the
    matches (random frames with tied scores, ignore regions and several settings)."""
    rng = np.random.default_rng(3)
    gts, dts = [], []
    for _ in range(30):
        k = int(rng.integers(0, 5))
        h = rng.uniform(20, 140, k)
        gts.append(dict(bboxes=np.c_[rng.uniform(10, 500, k), rng.uniform(10, 300, k), .41 * h, h],
                        bboxes_vis=np.zeros((k, 4)),
                        labels=list(rng.choice(['person', 'people', 'person?'], k,
                                               p=[.8, .1, .1]))))
        m = int(rng.integers(0, 12))
        hh = rng.uniform(20, 160, m)
        dts.append(np.c_[rng.uniform(0, 520, m), rng.uniform(0, 320, m), .41 * hh, hh,
                         rng.integers(0, 5, m) / 5])
    # detections on the gts, so that there are TPs
    dts = [np.r_[d, np.c_[g['bboxes'] + rng.normal(0, 3, g['bboxes'].shape),
                          rng.integers(0, 5, len(g['labels'])) / 5]] for g, d in zip(gts, dts)]
    settings = ['Reasonable', 'All', 'Overlap=75']
    res = evaluate_caltech(gts, dts, settings)
    matches = match_caltech(gts, dts, settings)
    for s in settings:
        m = matches[s]
        assert (m['dt_status'] == 1).sum() > 5
        assert res[s]['AP'] == pytest.approx(
            average_precision(m['dt_status'], m['dt_scores'], m['num_gt']), abs=1e-12)
        assert 0 < res[s]['AP'] < 1
