# Copyright (c) mmmimic contributors. All rights reserved.
"""A synthetic static-camera walker video with ground truth, for tests and smoke runs of the
vtest labeller (:mod:`.dataset`) and the study run."""
from typing import Dict, Tuple

import cv2
import numpy as np


def write_synthetic_video(path: str,
                          num_frames: int = 40,
                          size: Tuple[int, int] = (400, 240),
                          fps: float = 10.0,
                          seed: int = 0) -> Dict[str, object]:
    """Write a short static-camera video of dark upright "walkers" on a textured background
    (MJPG ``.avi``), with its ground truth; for tests and smoke runs.

    Walkers follow the perspective ``height = 0.3 * foot_row + 10`` (width 0.35 x height):
    ``A`` (foot row 100) and ``D`` (foot row 232) walk alone; ``B`` (foot row 160) and ``C``
    (foot row 168, in front) walk towards each other and overlap around frame 24 (frames
    ``merge_frames``: touching or overlapping), where a labeller should put an ignore region
    rather than person boxes; ``E`` (foot row 75) is smaller than 35 px, i.e. in the far field.

    Args:
        path: output ``.avi`` file.
        num_frames: number of frames (at least 30 for the crossing to happen).
        size: (width, height).
        fps: frame rate.
        seed: seed of the background texture and colours.

    Returns:
        dict with ``boxes`` (per frame a dict ``name -> [l, t, w, h]`` of the walkers fully
        inside the frame), ``merge_frames`` (frames where B and C overlap) and ``size``.
    """
    img_w, img_h = size
    rng = np.random.default_rng(seed)
    tex = rng.integers(110, 210, size=(img_h // 6 + 2, img_w // 6 + 2, 3)).astype(np.uint8)
    bg = cv2.resize(tex, (img_w, img_h), interpolation=cv2.INTER_CUBIC)
    # name: (foot row, x centre at frame 0, pixels per frame)
    walkers = dict(A=(100, 30.0, 4.0), B=(160, 80.0, 4.0), C=(168, 270.0, -4.0),
                   D=(232, 300.0, 2.0), E=(75, 350.0, -3.0))
    colors = {k: tuple(int(c) for c in rng.integers(15, 60, size=3)) for k in sorted(walkers)}
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (img_w, img_h))
    if not writer.isOpened():
        raise RuntimeError(f'cv2.VideoWriter cannot write MJPG to {path!r}')
    boxes, merge_frames = [], []
    for t in range(num_frames):
        img = bg.copy()
        fb = {}
        for name in sorted(walkers, key=lambda k: walkers[k][0]):  # far ones first
            foot, x0, v = walkers[name]
            h = int(round(0.3 * foot + 10))
            w = int(round(0.35 * h))
            left = int(round(x0 + v * t - w / 2))
            top = foot - h
            if left < 0 or left + w > img_w:
                continue
            col = colors[name]
            head_r = max(2, int(round(0.09 * h)))
            cv2.rectangle(img, (left, top + 2 * head_r), (left + w - 1, foot - 1), col, -1)
            cv2.circle(img, (left + w // 2, top + head_r), head_r, col, -1)
            fb[name] = [float(left), float(top), float(w), float(h)]
        if 'B' in fb and 'C' in fb and (max(fb['B'][0], fb['C'][0]) - min(
                fb['B'][0] + fb['B'][2], fb['C'][0] + fb['C'][2])) <= 3:
            merge_frames.append(t)
        boxes.append(fb)
        writer.write(img)
    writer.release()
    return dict(boxes=boxes, merge_frames=merge_frames, size=size)
