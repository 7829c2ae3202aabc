# Copyright (c) mmmimic contributors. All rights reserved.
"""Per-frame blob rules: merge fragments of one person, then label each blob from its size
relative to the expected height at its foot row."""
from typing import Optional, Sequence, Tuple

import numpy as np

from .structures import (AREA, FAR, GROUP, PERSON, UNCERTAIN, H, HeightModel, LabelerConfig,
                         W, X, Y)


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0, y0 = min(a[X], b[X]), min(a[Y], b[Y])
    x1, y1 = max(a[X] + a[W], b[X] + b[W]), max(a[Y] + a[H], b[Y] + b[H])
    return np.array([x0, y0, x1 - x0, y1 - y0, a[AREA] + b[AREA]], dtype=np.int64)


def merge_fragments(blobs: np.ndarray, hm: HeightModel, cfg: LabelerConfig) -> np.ndarray:
    """Greedily merge fragments whose union still has the size of one person.

    Two blobs are merged when the gap between their boxes (horizontal and vertical) is at
    most ``merge_gap`` times the expected height and the union is not taller than
    ``height_range[1]`` nor wider than ``width_range[1]`` times the expected height at the
    union's foot row.  This rejoins bodies cut by thin occluders (poles) or by clothing that
    matches the background, without merging separate people.

    Args:
        blobs: (N, 5) blob array of one frame.
        hm: perspective model.
        cfg: labeller parameters.

    Returns:
        The merged (M, 5) blob array, M <= N, sorted by (x, y).
    """
    blobs = [b.copy() for b in blobs]
    while len(blobs) > 1:
        best = _closest_mergeable_pair(blobs, hm, cfg)
        if best is None:
            break
        i, j, u = best
        blobs = [b for k, b in enumerate(blobs) if k not in (i, j)] + [u]
    if not blobs:
        return np.zeros((0, 5), dtype=np.int64)
    arr = np.stack(blobs, axis=0)
    return arr[np.lexsort((arr[:, Y], arr[:, X]))]


def _closest_mergeable_pair(blobs: Sequence[np.ndarray], hm: HeightModel,
                            cfg: LabelerConfig) -> Optional[Tuple[int, int, np.ndarray]]:
    """``(i, j, union)`` of the mergeable pair with the smallest gap (ties: lowest ``i``,
    then ``j``), or None."""
    best = None
    for i in range(len(blobs)):
        for j in range(i + 1, len(blobs)):
            gap, u = _merge_gap(blobs[i], blobs[j], hm, cfg)
            if u is None:
                continue
            key = (gap, i, j)
            if best is None or key < best[0]:
                best = (key, i, j, u)
    return None if best is None else best[1:]


def _merge_gap(a: np.ndarray, b: np.ndarray, hm: HeightModel,
               cfg: LabelerConfig) -> Tuple[int, Optional[np.ndarray]]:
    """``(gap, union)`` when blobs ``a`` and ``b`` may be merged into one person, else
    ``(0, None)``; the gap is the larger of the horizontal and vertical gaps (pixels)."""
    u = _union(a, b)
    eh = float(hm(u[Y] + u[H]))
    if eh < 1:
        return 0, None
    gx = max(a[X], b[X]) - min(a[X] + a[W], b[X] + b[W])
    gy = max(a[Y], b[Y]) - min(a[Y] + a[H], b[Y] + b[H])
    # Parts stacked vertically (a body cut by a sign or a bar) may be further apart than
    # side-by-side parts.
    if gx > cfg.merge_gap * eh or gy > cfg.merge_vgap * eh:
        return 0, None
    if u[H] > cfg.height_range[1] * eh or u[W] > cfg.width_range[1] * eh:
        return 0, None
    # Merging must make the pair more person-like: the union is taller than either part, or
    # the parts overlap in columns (a split torso).
    if u[H] <= max(a[H], b[H]) and gx > 0:
        return 0, None
    return max(gx, gy), u


def classify_blob(blob: np.ndarray, hm: HeightModel, img_shape: Tuple[int, int],
                  far_row: float, cfg: LabelerConfig) -> Optional[str]:
    """Label one (merged) blob from its size relative to the expected height.

    Args:
        blob: ``[x, y, w, h, area]``.
        hm: perspective model.
        img_shape: (height, width) of the frame.
        far_row: foot rows above this are in the far-field band.
        cfg: labeller parameters.

    Returns:
        ``'person'``, ``'people'`` (group / merge), ``'person?'`` (partial, cut by the
        border or of uncertain size), ``'far'`` (inside the far-field band) or ``None``
        (noise).
    """
    img_h, img_w = img_shape
    x, y, w, h, area = (int(v) for v in blob[:5])
    foot = y + h
    eh = float(hm(foot))
    if foot <= far_row or eh < cfg.far_height:
        return FAR
    exp_area = hm.person_fill * eh * eh
    b = cfg.border
    if x <= b or y <= b or x + w >= img_w - b or y + h >= img_h - b:
        # Cut by the border: people entering show as thin slivers, noise rarely does.
        if area < cfg.uncertain_min_area * exp_area / 4:
            return None
        return UNCERTAIN
    if area < cfg.uncertain_min_area * exp_area:
        return None
    h_lo, h_hi = cfg.height_range
    w_lo, w_hi = cfg.width_range
    if h > h_hi * eh or w > w_hi * eh or area > cfg.group_area * exp_area:
        # Too tall (people one behind the other) or too wide (side by side): a group,
        # unless it is a low wide smear (not enough area for two people).
        if area >= 1.2 * exp_area:
            return GROUP
        return UNCERTAIN
    if h < h_lo * eh or w < w_lo * eh:
        return UNCERTAIN
    return PERSON
