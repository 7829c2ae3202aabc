# Copyright (c) mmmimic contributors. All rights reserved.
"""Data structures of the vtest labeller: labels, blob columns, parameters, perspective model and
per-frame labels."""
import math
from dataclasses import asdict, dataclass, field
from typing import List, Tuple

import numpy as np

#: Labels written for objects.  ``person`` is a positive; the others become ignore regions
#: in the Caltech evaluation.
PERSON = 'person'
UNCERTAIN = 'person?'
GROUP = 'people'
#: Internal class of blobs inside the far-field band (they are covered by the band's one
#: ignore region and never written themselves).
FAR = 'far'

# Blob array columns: a blob is an int64 row ``[x, y, w, h, area]``.
X, Y, W, H, AREA = range(5)


@dataclass
class LabelerConfig:
    """Parameters of :class:`VideoPedestrianLabeler` (defaults tuned once, documented in
    ``projects/vtest_mimic/docs/labels.md``; nothing here is a pixel coordinate of a particular
    video).

    Args:
        bg_max_frames: at most this many frames (evenly spaced over the clip) enter the
            median background.
        diff_thr: colour difference (max over B, G, R, 0-255) that makes a pixel foreground.
        shadow_ratio: brightness ratio (frame / background) range of shadow pixels.
        shadow_chroma: max L1 distance of normalised rgb between frame and background for a
            shadow pixel.
        open_len: height of the vertical opening that removes thin horizontal structures.
        close_size: size of the square closing that fills small holes.
        min_area: components smaller than this (pixels) are noise.
        fit_min_blobs: clean blobs needed to fit the perspective line.
        far_height: people whose expected height is below this (pixels) are in the far-field
            ignore band.
        height_range: a single person's blob height relative to the expected height.
        width_range: a single person's blob width relative to the expected height (on
            vtest.avi single people are 0.25-0.45, side-by-side pairs 0.5-0.7).
        group_area: a blob with more than this multiple of the expected person area is a
            group even when its box has the size of one person (two people overlapping).
        uncertain_min_area: a blob that is not a person but covers at least this fraction
            of the expected person area becomes an uncertain (ignore) region; smaller ones are
            dropped as noise.
        merge_gap: max gap (relative to the expected height) between fragments that are
            merged into one blob.
        merge_vgap: max vertical gap (relative to the expected height) between fragments
            stacked vertically (a body cut horizontally by an occluder).
        border: blobs within this many pixels of the image border are ignore regions.
        min_track_len: person boxes on tracks shorter than this (frames) become ``person?``.
        link_overlap: min intersection / smaller-area for linking blobs of adjacent frames.
        merge_min_area: a blob counts as a person-sized track in merge detection when its
            area is at least this fraction of the expected person area.
        ignore_pad: ignore boxes are padded by this fraction of their height.
        use_hog: split too-wide blobs where the HOG people detector agrees.
        hog_thr: min HOG SVM score of an accepted detection.
    """
    bg_max_frames: int = 200
    diff_thr: float = 30.0
    shadow_ratio: Tuple[float, float] = (0.4, 0.95)
    shadow_chroma: float = 0.05
    open_len: int = 5
    close_size: int = 3
    min_area: int = 40
    fit_min_blobs: int = 20
    far_height: float = 35.0
    height_range: Tuple[float, float] = (0.75, 1.15)
    width_range: Tuple[float, float] = (0.18, 0.5)
    group_area: float = 1.6
    uncertain_min_area: float = 0.15
    merge_gap: float = 0.12
    merge_vgap: float = 0.6
    border: int = 3
    min_track_len: int = 3
    link_overlap: float = 0.3
    merge_min_area: float = 0.3
    ignore_pad: float = 0.05
    use_hog: bool = False
    hog_thr: float = 0.3

    def to_dict(self) -> dict:
        """Return the parameters as a plain (json-serialisable) dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class HeightModel:
    """Perspective model ``expected_height(foot_row) = slope * foot_row + intercept``.

    Args:
        slope: pixels of height per pixel of foot row.
        intercept: expected height at foot row 0.
        num_blobs: clean blobs the line was fitted to.
        person_fill: median (blob area / expected_height**2) of the clean blobs, i.e. the
            expected person area is ``person_fill * expected_height**2``.
    """
    slope: float
    intercept: float
    num_blobs: int = 0
    person_fill: float = 0.12

    def __call__(self, foot_row):
        return self.slope * np.asarray(foot_row, dtype=np.float64) + self.intercept

    def row_of_height(self, height: float) -> float:
        """Foot row at which the expected height equals ``height``."""
        if abs(self.slope) < 1e-9:
            return -math.inf if self.intercept >= height else math.inf
        return (height - self.intercept) / self.slope


@dataclass
class FrameLabels:
    """Labels of one frame.

    Args:
        boxes: (N, 4) float array of ``[l, t, w, h]`` in pixels.
        labels: N labels (``person``, ``person?`` or ``people``).
        object_ids: N object ids, one per box: the id of the box's track (>= 1, unique per
            track over the video), -1 for the far-field band.
    """
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: List[str] = field(default_factory=list)
    object_ids: List[int] = field(default_factory=list)
