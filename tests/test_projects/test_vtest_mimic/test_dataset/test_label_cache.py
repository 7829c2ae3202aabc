"""Tests of the labels cache of the vtest wing."""
import json
import shutil

import numpy as np

from projects.vtest_mimic.vtest_mimic.dataset import (LabelerConfig, VideoPedestrianLabeler,
                                                      iter_video_frames, label_video,
                                                      labeller_digest, labels_from_json,
                                                      labels_to_json)
from projects.vtest_mimic.vtest_mimic.dataset import label_cache as lc
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video


def test_digest_follows_every_labeller_module(tmp_path, monkeypatch):
    cfg = LabelerConfig()
    base = labeller_digest(cfg)
    assert labeller_digest(LabelerConfig()) == base
    assert labeller_digest(LabelerConfig(diff_thr=31.0)) != base
    names = {m.__name__.rsplit('.', 1)[1] for m in lc.LABELLER_MODULES}
    assert names == {'structures', 'foreground', 'perspective', 'blob_rules', 'tracking', 'hog',
                     'labeler'}
    for module in lc.LABELLER_MODULES:
        copy = tmp_path / (module.__name__ + '.py')
        shutil.copy(module.__file__, copy)
        with open(copy, 'a') as fh:
            fh.write('# changed\n')
        with monkeypatch.context() as m:
            m.setattr(module, '__file__', str(copy))
            assert labeller_digest(cfg) != base, module.__name__
    assert labeller_digest(cfg) == base


def test_json_round_trip_and_cache(tmp_path):
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video, num_frames=32, size=(320, 240))
    frames = list(iter_video_frames(video))
    result = VideoPedestrianLabeler().label(frames)
    d = labels_to_json(result, len(frames), frames[0].shape[:2])
    back = labels_from_json(json.loads(json.dumps(d)))
    assert len(back) == 32 and d['img_shape'] == [240, 320]
    for a, b in zip(result['frames'], back):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.005)
        assert a.labels == b.labels and a.object_ids == b.object_ids
    cache = str(tmp_path / 'cache')
    first, decoded = label_video(video, LabelerConfig(), cache)
    assert len(decoded) == 32 and first['frames'] == d['frames']
    # The second call reads the cache and decodes nothing.
    second, none = label_video(video, LabelerConfig(), cache)
    assert none is None and second == first
