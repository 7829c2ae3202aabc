# Copyright (c) mmmimic contributors. All rights reserved.
"""Foreground of a static-camera frame: median background, colour difference with a per-frame
gain correction, shadow suppression, morphology and connected components (blobs)."""
from typing import Sequence

import cv2
import numpy as np

from .structures import X, Y, LabelerConfig


def median_background(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel median of ``frames`` (uint8 HxWx3 arrays), as uint8."""
    if len(frames) == 0:
        raise ValueError('median_background needs at least one frame')
    stack = np.stack(frames, axis=0)
    return np.median(stack, axis=0).round().astype(np.uint8)


class ForegroundExtractor:
    """Colour-difference foreground with shadow suppression and morphology.

    Args:
        background: uint8 HxWx3 background image.
        cfg: labeller parameters.
    """

    def __init__(self, background: np.ndarray, cfg: LabelerConfig):
        if background.ndim != 3 or background.shape[2] != 3:
            raise ValueError(f'background must be HxWx3, got {background.shape}')
        self.cfg = cfg
        self.bg = background
        self.bg_f = background.astype(np.float32)
        self.bg_sum = self.bg_f.sum(axis=2) + 3.0
        self.bg_chroma = self.bg_f / self.bg_sum[..., None]
        # Pixels used for the gain estimate: a fixed sparse grid of not-too-dark pixels.
        self._grid = (slice(2, None, 8), slice(2, None, 8))
        self._open_k = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(1, cfg.open_len)))
        self._close_k = cv2.getStructuringElement(cv2.MORPH_RECT,
                                                  (max(1, cfg.close_size), ) * 2)

    def gain(self, frame: np.ndarray) -> float:
        """Global brightness gain of ``frame`` relative to the background (median ratio)."""
        f = frame[self._grid].astype(np.float32).sum(axis=2) + 3.0
        b = self.bg_sum[self._grid]
        return float(np.median(f / b))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Return the uint8 (0/255) foreground mask of a BGR uint8 frame."""
        if frame.shape != self.bg.shape:
            raise ValueError(f'frame shape {frame.shape} != background {self.bg.shape}')
        cfg = self.cfg
        g = self.gain(frame)
        f = frame.astype(np.float32)
        if abs(g - 1.0) > 1e-3:
            f *= np.float32(1.0 / g)
        diff = np.abs(f - self.bg_f).max(axis=2)
        fg = diff > cfg.diff_thr
        f_sum = f.sum(axis=2) + 3.0
        ratio = f_sum / self.bg_sum
        lo, hi = cfg.shadow_ratio
        cand = fg & (ratio > lo) & (ratio < hi)
        if cand.any():
            ys, xs = np.nonzero(cand)
            ch = np.abs(f[ys, xs] / f_sum[ys, xs, None] - self.bg_chroma[ys, xs]).sum(axis=1)
            shadow = ch < cfg.shadow_chroma
            fg[ys[shadow], xs[shadow]] = False
        mask = fg.astype(np.uint8) * 255
        if cfg.open_len > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open_k)
        if cfg.close_size > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close_k)
        return mask


def connected_blobs(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Connected components of a mask as an (N, 5) int array ``[x, y, w, h, area]``,
    components below ``min_area`` dropped, sorted by (x, y) for determinism."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:n]
    stats = stats[stats[:, cv2.CC_STAT_AREA] >= min_area]
    blobs = stats[:, :5].astype(np.int64)
    order = np.lexsort((blobs[:, Y], blobs[:, X]))
    return blobs[order]
