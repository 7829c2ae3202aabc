"""Tests of the HOG agreement switch of the vtest labeller."""
import numpy as np
import pytest

from projects.vtest_mimic.vtest_mimic.dataset import (HogSplitter, LabelerConfig, hog,
                                                      hog_available, resolve_hog)


def test_resolve_hog(monkeypatch, capsys):
    assert resolve_hog('on') is True and resolve_hog('off') is False
    monkeypatch.setattr(hog, 'hog_available', lambda: True)
    assert resolve_hog('auto') is True
    assert 'warning' not in capsys.readouterr().out
    monkeypatch.setattr(hog, 'hog_available', lambda: False)
    assert resolve_hog('auto') is False
    assert 'cv2.HOGDescriptor is missing' in capsys.readouterr().out
    with pytest.raises(ValueError, match="'maybe'"):
        resolve_hog('maybe')


class _FakeHog:
    """Stands in for cv2.HOGDescriptor: returns fixed windows (crop pixels) and scores."""

    def __init__(self, rects, scores):
        self.rects, self.scores = np.array(rects), np.array(scores, dtype=np.float64)

    def detectMultiScale(self, crop, **kwargs):
        assert crop.shape[0] >= 128 and crop.shape[1] >= 64
        return self.rects, self.scores.reshape(-1, 1)


@pytest.mark.skipif(not hog_available(), reason='cv2.HOGDescriptor missing (OpenCV 5)')
def test_split_cuts_between_hog_people():
    # Two 24x60 people side by side (columns 100-123 and 126-149, rows 40-99), one blob.
    mask = np.zeros((200, 240), np.uint8)
    mask[40:100, 100:124] = 255
    mask[40:100, 126:150] = 255
    frame = np.zeros((200, 240, 3), np.uint8)
    blob = np.array([100, 40, 50, 60, 2880])
    splitter = HogSplitter(LabelerConfig(use_hog=True))
    # eh = 60: crop scale 1.6, crop origin x0 = 100 - 22; windows centred at x 111.75 and 138.
    splitter.hog = _FakeHog([[22, 10, 64, 128], [64, 12, 64, 128]], [1.0, 0.8])
    parts = splitter.split(frame, mask, blob, 60.0)
    assert [p.tolist() for p in parts] == [[100, 40, 24, 60, 1440], [126, 40, 24, 60, 1440]]
    # One person found (the other window scores below hog_thr = 0.3): no split.
    splitter.hog = _FakeHog([[22, 10, 64, 128], [64, 12, 64, 128]], [1.0, 0.2])
    assert splitter.split(frame, mask, blob, 60.0) == []
    # Windows of the wrong size (a person of 0.75 * 64 / 1.6 = 30 px, not 60) are ignored.
    splitter.hog = _FakeHog([[22, 10, 32, 64], [64, 12, 32, 64]], [1.0, 0.8])
    assert splitter.split(frame, mask, blob, 60.0) == []
