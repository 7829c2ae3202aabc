"""Tests of the Caltech-format vtest release written from a short synthetic MJPG video."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmmimic.datasets.caltech_io import SeqReader, read_vbb
from projects.vtest_mimic.vtest_mimic.dataset import (LabelerConfig, build_release, make_splits,
                                                      parse_size, render_samples, resolve_hog)
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video

SPLIT_KW = dict(test_frac=0.3, val_frac=0.1, gap=2)


def _build(video, out, cache, size='native', use_hog=None):
    use_hog = resolve_hog('auto') if use_hog is None else use_hog
    return build_release(video, out, cfg=LabelerConfig(use_hog=use_hog), cache_dir=cache,
                         size=size, **SPLIT_KW)


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp('vtest')
    video = str(root / 'walk.avi')
    gt = write_synthetic_video(video)
    out, cache = str(root / 'out'), str(root / 'cache')
    info = _build(video, out, cache)
    render_samples(out, str(root / 'show'), 4)
    return dict(root=root, video=video, gt=gt, out=out, cache=cache, info=info)


def test_layout_and_splits(release):
    out, info = release['out'], release['info']
    ranges = []
    for split, set_name in (('train', 'set00'), ('val', 'set01'), ('test', 'set02')):
        s = info['sets'][set_name]
        assert s['split'] == split
        seq = osp.join(out, set_name, 'V000.seq')
        vbb = osp.join(out, 'annotations', set_name, 'V000.vbb')
        reader = SeqReader(seq)
        assert len(reader) == s['num_frames'] == len(read_vbb(vbb))
        img = cv2.imdecode(np.frombuffer(reader[0], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (240, 400, 3)
        reader.close()
        ranges.append(s['video_frames'])
    # train 0-19, gap, val 22-25, gap, test 28-39: disjoint with gaps of 2 frames.
    assert ranges == [[0, 19], [22, 25], [28, 39]]
    with open(osp.join(out, 'splits.json')) as fh:
        assert json.load(fh)['key'] == info['key']
    assert len(os.listdir(str(release['root'] / 'show'))) == 4


def test_annotations_match_walkers(release):
    out, gt = release['out'], release['gt']
    frames = read_vbb(osp.join(out, 'annotations', 'set00', 'V000.vbb'))
    labels_of_id = {}
    for f, objs in enumerate(frames):
        persons = [o['pos'] for o in objs if o['lbl'] == 'person']
        a = gt['boxes'][f]['A']
        assert any(np.abs(np.subtract(p, a)).max() <= 2 for p in persons), (f, objs)
        for o in objs:
            assert labels_of_id.setdefault(o['id'], o['lbl']) == o['lbl']
    test = read_vbb(osp.join(out, 'annotations', 'set02', 'V000.vbb'))
    assert sum(o['lbl'] == 'person' for objs in test for o in objs) > 20
    st = release['info']['stats_all_sets']
    assert st['person_per_frame'] > 2 and st['frames_with_far_band'] == st['frames']


def test_rerun_is_cached_and_output_deterministic(release, tmp_path):
    seq = osp.join(release['out'], 'set00', 'V000.seq')
    mtime = os.stat(seq).st_mtime_ns
    info = _build(release['video'], release['out'], release['cache'])
    assert os.stat(seq).st_mtime_ns == mtime and info['key'] == release['info']['key']
    # A fresh build (labels recomputed: new cache) gives identical frames and labels.
    out2 = str(tmp_path / 'out2')
    _build(release['video'], out2, str(tmp_path / 'c2'))
    for set_name in ('set00', 'set01', 'set02'):
        with open(osp.join(release['out'], set_name, 'V000.seq'), 'rb') as a, \
                open(osp.join(out2, set_name, 'V000.seq'), 'rb') as b:
            assert a.read() == b.read()
        vbb = osp.join('annotations', set_name, 'V000.vbb')
        assert read_vbb(osp.join(release['out'], vbb)) == read_vbb(osp.join(out2, vbb))


def test_resize_scales_boxes(release, tmp_path):
    out = str(tmp_path / 'half')
    info = _build(release['video'], out, release['cache'], size='200x120', use_hog=False)
    assert info['labeler']['use_hog'] is False and info['size'] == [200, 120]
    full = read_vbb(osp.join(release['out'], 'annotations', 'set00', 'V000.vbb'))
    half = read_vbb(osp.join(out, 'annotations', 'set00', 'V000.vbb'))
    assert len(SeqReader(osp.join(out, 'set00', 'V000.seq'))) == len(half)
    p_full = [o['pos'] for o in full[0] if o['lbl'] == 'person']
    p_half = [o['pos'] for o in half[0] if o['lbl'] == 'person']
    np.testing.assert_allclose(np.array(p_half), np.array(p_full) / 2, atol=0.02)


def test_split_and_size_errors():
    with pytest.raises(ValueError):
        make_splits(10, gap=30)
    with pytest.raises(ValueError):
        parse_size('big', (768, 576))
