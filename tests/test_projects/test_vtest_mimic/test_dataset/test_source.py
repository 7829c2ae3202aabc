"""Tests of locating vtest.avi (no download is attempted)."""
import pytest

from projects.vtest_mimic.vtest_mimic.dataset import file_digest, locate_video, source


def test_locate_video_and_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        locate_video(str(tmp_path / 'missing.avi'), str(tmp_path))
    monkeypatch.setattr(source, 'SYSTEM_VIDEO', str(tmp_path / 'none.avi'))
    with pytest.raises(FileNotFoundError, match='not found'):
        locate_video(None, str(tmp_path), allow_download=False)
    cached = tmp_path / 'opencv-doc' / 'vtest.avi'
    cached.parent.mkdir()
    cached.write_bytes(b'x')
    assert locate_video(None, str(tmp_path), allow_download=False) == str(cached)


def test_file_digest(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    a.write_bytes(b'abc')
    b.write_bytes(b'abd')
    # sha1('abc') = a9993e364706816aba3e25717850c26c9cd0d89d
    assert file_digest(str(a)) == 'a9993e364706816a'
    assert file_digest(str(a)) != file_digest(str(b))
