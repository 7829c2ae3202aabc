# Copyright (c) mmmimic contributors. All rights reserved.
"""Decoding of video files (BGR uint8 frames)."""
from typing import Iterator, List

import cv2
import numpy as np

from mmmimic.utils.progress_bar import progress


def iter_video_frames(path: str) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame (BGR uint8).

    Raises:
        FileNotFoundError: if OpenCV cannot open ``path``.
    """
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise FileNotFoundError(f'cannot open video {path!r}')
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
    finally:
        cap.release()


def decode_video(video: str) -> List[np.ndarray]:
    """Decode every frame of ``video`` (BGR uint8), with a progress bar.

    Raises:
        RuntimeError: the video has no decodable frame.
    """
    cap = cv2.VideoCapture(video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    frames = list(progress(iter_video_frames(video), desc='decode', total=total or None,
                           unit='frame', leave=False))
    if not frames:
        raise RuntimeError(f'no frame could be decoded from {video!r}')
    return frames
