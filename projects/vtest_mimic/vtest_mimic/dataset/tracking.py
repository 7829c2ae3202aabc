# Copyright (c) mmmimic contributors. All rights reserved.
"""Tracking of blobs over a clip: frame-to-frame links by overlap, merge flags (several people
in one blob) and track ids."""
from typing import Callable, Iterable, List, Sequence

import numpy as np

from .structures import AREA, H, W, X, Y


def _overlap_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box area between the rows of two blob arrays."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0 = a[:, X, None], a[:, Y, None]
    ax1, ay1 = ax0 + a[:, W, None], ay0 + a[:, H, None]
    bx0, by0 = b[None, :, X], b[None, :, Y]
    bx1, by1 = bx0 + b[None, :, W], by0 + b[None, :, H]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    sa = (a[:, W] * a[:, H])[:, None]
    sb = (b[:, W] * b[:, H])[None, :]
    return inter / np.maximum(np.minimum(sa, sb), 1)


def link_frames(blobs: Sequence[np.ndarray], min_overlap: float) -> List[np.ndarray]:
    """Boolean link matrices between consecutive frames (``links[t][i, j]``: blob i of
    frame t overlaps blob j of frame t+1 by at least ``min_overlap`` of the smaller box)."""
    return [_overlap_matrix(blobs[t], blobs[t + 1]) >= min_overlap
            for t in range(len(blobs) - 1)]


def merge_flags(blobs: Sequence[np.ndarray],
                links: Sequence[np.ndarray],
                big: Sequence[np.ndarray],
                keep_area: float = 0.45,
                max_frames: int = 30) -> List[np.ndarray]:
    """Flag blobs that are merges of several people, forward and backward in time.

    A blob is a merge when two or more ``big`` (person-sized) blobs of the previous frame
    link to it (people joining: forward) or it links to two or more big blobs of the next
    frame (people separating: backward).  The flag propagates along one-to-one links, so the
    time a pair stays merged is covered, but only while the blob keeps at least
    ``keep_area`` of the merged area (one of the people may leave unseen, e.g. behind an
    occluder) and for at most ``max_frames`` frames.

    Args:
        blobs: per-frame blob arrays.
        links: output of :func:`link_frames`.
        big: per-frame boolean arrays, True for person-sized blobs.
        keep_area: fraction of the merged area a continuation must keep.
        max_frames: longest propagation from a merge event.

    Returns:
        Per-frame boolean arrays.
    """
    n = len(blobs)
    fwd = _MergePropagation(blobs, keep_area, max_frames).run(range(n), lambda p, t: links[p],
                                                              big)
    bwd = _MergePropagation(blobs, keep_area, max_frames).run(range(n - 1, -1, -1),
                                                              lambda p, t: links[t].T, big)
    return [f | b for f, b in zip(fwd, bwd)]


class _MergePropagation:
    """One direction (forward or backward in time) of :func:`merge_flags`.

    Per blob it keeps ``flag`` (a merge), ``ref`` (the merged area of the event a flagged blob
    descends from) and ``age`` (frames since that event).
    """

    def __init__(self, blobs: Sequence[np.ndarray], keep_area: float, max_frames: int):
        self.blobs = blobs
        self.keep_area = keep_area
        self.max_frames = max_frames
        self.ref = [np.zeros(len(b)) for b in blobs]
        self.age = [np.zeros(len(b), dtype=np.int64) for b in blobs]
        self.flag = [np.zeros(len(b), dtype=bool) for b in blobs]

    def run(self, order: Iterable[int], links_between: Callable[[int, int], np.ndarray],
            big: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Visit the frames in ``order``; ``links_between(p, t)`` is the link matrix from the
        previously visited frame ``p`` (rows) to frame ``t`` (columns)."""
        order = list(order)
        for prev_t, t in zip(order, order[1:]):
            L = links_between(prev_t, t)
            if L.size:
                self._step(prev_t, t, L, big[prev_t])
        return self.flag

    def _step(self, prev_t: int, t: int, L: np.ndarray, prev_big: np.ndarray) -> None:
        area_prev = self.blobs[prev_t][:, AREA].astype(np.float64)
        area = self.blobs[t][:, AREA].astype(np.float64)
        # A merge event: two or more person-sized blobs of prev_t link to one blob of t.
        ev = (L & prev_big[:, None]).sum(axis=0) >= 2
        self.flag[t] |= ev
        self.ref[t][ev] = (L[:, ev] * (area_prev * prev_big)[:, None]).sum(axis=0)[...]
        # A one-to-one continuation of a flagged blob stays flagged while it keeps the area.
        one_in = L.sum(axis=0) == 1
        one_out = L.sum(axis=1) == 1
        for j in np.nonzero(one_in & ~ev)[0]:
            i = int(np.nonzero(L[:, j])[0][0])
            if (one_out[i] and self.flag[prev_t][i] and self.age[prev_t][i] < self.max_frames
                    and area[j] >= self.keep_area * self.ref[prev_t][i]):
                self.flag[t][j] = True
                self.ref[t][j] = self.ref[prev_t][i]
                self.age[t][j] = self.age[prev_t][i] + 1


def track_ids(blobs: Sequence[np.ndarray], links: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Assign track ids (>= 1): a blob continues the track of its predecessor when the link
    is one-to-one, otherwise a new track starts.  Returns per-frame int arrays."""
    next_id = 1
    ids = []
    for t, b in enumerate(blobs):
        cur = np.zeros(len(b), dtype=np.int64)
        if t > 0 and links[t - 1].size:
            L = links[t - 1]
            one_in = L.sum(axis=0) == 1
            one_out = L.sum(axis=1) == 1
            for j in range(len(b)):
                if one_in[j]:
                    i = int(np.nonzero(L[:, j])[0][0])
                    if one_out[i]:
                        cur[j] = ids[t - 1][i]
        for j in range(len(b)):
            if cur[j] == 0:
                cur[j] = next_id
                next_id += 1
        ids.append(cur)
    return ids
