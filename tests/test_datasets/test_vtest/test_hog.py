"""Tests of the HOG agreement switch of the vtest labeller."""
import pytest

from mmmimic.datasets.vtest import hog, resolve_hog


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
