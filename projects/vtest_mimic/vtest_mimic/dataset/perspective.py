# Copyright (c) mmmimic contributors. All rights reserved.
"""Perspective of the scene: the expected person height as a line in the foot row, fitted to
the clean (upright, compact) blobs of a whole clip."""
import math
from typing import Sequence, Tuple

import numpy as np

from .structures import AREA, H, W, X, Y, HeightModel, LabelerConfig


def fit_height_model(blobs: Sequence[np.ndarray],
                     img_shape: Tuple[int, int],
                     cfg: LabelerConfig) -> HeightModel:
    """Fit the expected-height-vs-foot-row line to the clean blobs of a whole clip.

    Clean blobs are upright (height / width in [2, 4.5]), compact (fill in [0.3, 0.9]), of
    reasonable area and not touching the border.  The line is fitted to per-row-bin medians
    (robust to fragments and merges) and refined on the blobs within 20% of it.

    Args:
        blobs: per-frame blob arrays from :func:`connected_blobs`.
        img_shape: (height, width) of the frames.
        cfg: labeller parameters.

    Returns:
        The fitted :class:`HeightModel`.

    Raises:
        RuntimeError: if too few clean blobs were found (no moving people?).
    """
    c = clean_blobs(blobs, img_shape, cfg)
    foot = c[:, Y] + c[:, H]
    hgt = c[:, H]
    slope, icpt = _binned_median_line(foot, hgt, img_shape[0])
    slope, icpt = _refine_line(foot, hgt, slope, icpt, max(2, cfg.fit_min_blobs // 2))
    pred = np.maximum(slope * foot + icpt, 1)
    inl = np.abs(hgt - pred) <= 0.2 * pred
    fill_p = float(np.median(c[inl, AREA] / pred[inl]**2)) if inl.any() else 0.12
    return HeightModel(float(slope), float(icpt), int(inl.sum()), fill_p)


def clean_blobs(blobs: Sequence[np.ndarray], img_shape: Tuple[int, int],
                cfg: LabelerConfig) -> np.ndarray:
    """The clean blobs of a clip (upright, compact, not small, away from the border) as one
    float64 (N, 5) array.

    Raises:
        RuntimeError: if there are no blobs or fewer than ``cfg.fit_min_blobs`` clean ones.
    """
    img_h, img_w = img_shape
    allb = [b for b in blobs if len(b)]
    if not allb:
        raise RuntimeError('no foreground blobs in the video: cannot fit the perspective '
                           'height model (is the camera static and are people moving?)')
    b = np.concatenate(allb, axis=0).astype(np.float64)
    asp = b[:, H] / np.maximum(b[:, W], 1)
    fill = b[:, AREA] / np.maximum(b[:, W] * b[:, H], 1)
    m = cfg.border + 1
    inside = (b[:, X] >= m) & (b[:, Y] >= m) & (b[:, X] + b[:, W] <= img_w - m) & \
        (b[:, Y] + b[:, H] <= img_h - m)
    clean = (asp >= 2.0) & (asp <= 4.5) & (fill >= 0.3) & (fill <= 0.9) & inside & \
        (b[:, H] >= 0.5 * cfg.far_height)
    c = b[clean]
    if len(c) < cfg.fit_min_blobs:
        raise RuntimeError(f'only {len(c)} clean upright blobs found (need '
                           f'{cfg.fit_min_blobs}): cannot fit the perspective height model')
    return c


def _binned_median_line(foot: np.ndarray, hgt: np.ndarray, img_h: int) -> Tuple[float, float]:
    """(slope, intercept) of the line through the medians of foot-row bins of ~5% of the image
    height (bins of at least 3 blobs, weighted by sqrt(count)); flat at the median height
    when fewer than 2 bins qualify."""
    bin_sz = max(4.0, img_h / 20.0)
    bins = np.floor(foot / bin_sz).astype(np.int64)
    xs, ys, ws = [], [], []
    for k in np.unique(bins):
        sel = bins == k
        if sel.sum() >= 3:
            xs.append(np.median(foot[sel]))
            ys.append(np.median(hgt[sel]))
            ws.append(math.sqrt(sel.sum()))
    if len(xs) >= 2:
        return np.polyfit(np.array(xs), np.array(ys), 1, w=np.array(ws))
    return 0.0, float(np.median(hgt))


def _refine_line(foot: np.ndarray, hgt: np.ndarray, slope: float, icpt: float,
                 min_inliers: int) -> Tuple[float, float]:
    """Refit the line (up to 3 times) on the blobs within 20% of it; stops when fewer than
    ``min_inliers`` remain, and goes flat when the inliers share one foot row."""
    for _ in range(3):
        pred = slope * foot + icpt
        inl = np.abs(hgt - pred) <= 0.2 * np.maximum(pred, 1)
        if inl.sum() < min_inliers:
            break
        if np.ptp(foot[inl]) < 1:
            slope, icpt = 0.0, float(np.median(hgt[inl]))
            break
        slope, icpt = np.polyfit(foot[inl], hgt[inl], 1)
    return slope, icpt
