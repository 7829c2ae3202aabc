"""Tests of the classical video pedestrian labeller on a short synthetic MJPG video."""
import numpy as np
import pytest

from projects.vtest_mimic.vtest_mimic.dataset import (GROUP, PERSON, UNCERTAIN,
                                                      VideoPedestrianLabeler, iter_video_frames)
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video


def _iou(a, b):
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope='module')
def labelled(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('vid') / 'walk.avi')
    gt = write_synthetic_video(path)
    frames = list(iter_video_frames(path))
    return gt, frames, VideoPedestrianLabeler().label(frames)


def test_person_boxes_where_walkers_are(labelled):
    gt, frames, res = labelled
    assert len(res['frames']) == len(frames) == 40
    merge = set(gt['merge_frames'])
    assert merge, 'the synthetic walkers B and C must cross'
    checked = 0
    for t, (fb, fl) in enumerate(zip(gt['boxes'], res['frames'])):
        persons = [b for b, lbl in zip(fl.boxes, fl.labels) if lbl == PERSON]
        for name, box in fb.items():
            if name == 'E' or (name in 'BC' and t in merge):
                continue
            if box[0] < 6 or box[0] + box[2] > gt['size'][0] - 6:
                continue
            best = max((_iou(box, p) for p in persons), default=0.0)
            assert best >= 0.8, (t, name, box, fl.boxes, fl.labels)
            checked += 1
        # Every person box is a walker (precision).
        for p in persons:
            assert max(_iou(p, b) for b in fb.values()) >= 0.8, (t, p, fb)
    assert checked > 100


def test_merged_walkers_become_ignore_region(labelled):
    gt, _, res = labelled
    for t in gt['merge_frames']:
        fl = res['frames'][t]
        b, c = gt['boxes'][t]['B'], gt['boxes'][t]['C']
        for box, lbl in zip(fl.boxes, fl.labels):
            if lbl == PERSON:
                assert _iou(box, b) < 0.5 and _iou(box, c) < 0.5, (t, box)
        # One ignore region covers both walkers.
        ign = [box for box, lbl in zip(fl.boxes, fl.labels) if lbl in (GROUP, UNCERTAIN)]
        covers = [
            g for g in ign if g[0] <= min(b[0], c[0]) + 1 and g[1] <= min(b[1], c[1]) + 1 and
            g[0] + g[2] >= max(b[0] + b[2], c[0] + c[2]) - 1 and
            g[1] + g[3] >= max(b[1] + b[3], c[1] + c[3]) - 1 and g[2] < 0.5 * gt['size'][0]
        ]
        assert covers, (t, fl.boxes, fl.labels)


def test_perspective_and_far_band(labelled):
    gt, _, res = labelled
    hm = res['height_model']
    assert hm.slope == pytest.approx(0.3, abs=0.03)
    assert hm(160) == pytest.approx(58, abs=3)
    # Walker E (foot row 75, 32 px) lies inside the far-field band, which spans the width.
    band = res['far_band']
    assert band is not None and band[2] == gt['size'][0]
    e = gt['boxes'][0]['E']
    assert band[1] <= e[1] + 2 and band[1] + band[3] >= e[1] + e[3] - 2
    for fl in res['frames']:
        assert fl.object_ids[-1] == -1 and fl.labels[-1] == GROUP


def test_deterministic(labelled):
    _, frames, res = labelled
    res2 = VideoPedestrianLabeler().label(frames)
    for a, b in zip(res['frames'], res2['frames']):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert a.labels == b.labels and a.object_ids == b.object_ids


def test_errors():
    with pytest.raises(ValueError):
        VideoPedestrianLabeler().label([])
    static = [np.full((60, 80, 3), 128, np.uint8)] * 5
    with pytest.raises(RuntimeError, match='perspective'):
        VideoPedestrianLabeler().label(static)
