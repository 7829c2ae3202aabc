"""Tests of video decoding in the vtest wing."""
import pytest

from projects.vtest_mimic.vtest_mimic.dataset import decode_video, iter_video_frames
from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video


def test_decode_synthetic_video(tmp_path):
    path = str(tmp_path / 'walk.avi')
    write_synthetic_video(path, num_frames=12, size=(160, 120))
    frames = decode_video(path)
    assert len(frames) == 12
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype.name == 'uint8'
    assert len(list(iter_video_frames(path))) == 12


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(iter_video_frames('/nonexistent/video.avi'))
    empty = tmp_path / 'empty.avi'
    empty.write_bytes(b'not a video')
    with pytest.raises((RuntimeError, FileNotFoundError), match='empty.avi'):
        decode_video(str(empty))
