# Copyright (c) mmmimic contributors. All rights reserved.
"""Classical, model-independent pedestrian labels for a static-camera video.

The labeller turns a fixed-camera video into per-frame pedestrian boxes plus Caltech-style
ignore regions, without any learned model (an optional HOG people detector, a classical
hand-designed detector shipped with OpenCV, may be asked to agree before a wide blob is split).

Procedure (all scene quantities are derived from the video itself):

1. **Background**: the per-pixel median over (a temporal subsample of) the whole clip.
2. **Foreground**: colour difference to the background (max over channels, after a per-frame
   gain correction for the camera's auto exposure) above ``diff_thr``; pixels that are darker
   than the background at the same chromaticity (brightness ratio in ``shadow_ratio``,
   normalised-rgb distance below ``shadow_chroma``) are shadows and removed.
3. **Morphology**: a thin vertical opening removes thin horizontal structures (fluttering
   barrier tape, wires), a small closing fills holes; connected components with their boxes.
4. **Perspective**: a line ``expected_height = a * foot_row + b`` is fitted robustly to the
   "clean" components (upright aspect, compact, away from the border) of the whole clip.
   Rows where the expected height is below ``far_height`` form the far-field band, which is
   written as one ignore region (its top is the highest foot row that moving blobs reached).
5. **Fragments**: components that together look like one person (overlapping columns or a
   small gap, union of plausible size, e.g. a body cut in two by a pole) are merged.
6. **Size / aspect rules** against the expected height at the blob's foot row: a single
   person, a group (too wide or too tall: ignore), a partial / uncertain person (ignore), or
   noise (dropped).  Blobs touching the image border are ignore regions.
7. **Optional HOG agreement**: a too-wide blob is split into persons only where
   ``cv2.HOGDescriptor_getDefaultPeopleDetector`` finds at least two people of the expected
   size inside it.
8. **Tracking**: blobs are linked frame to frame by overlap.  A blob fed by two person-sized
   blobs (forward) or feeding two (backward) is a merge of people (e.g. one walking behind
   the other), as is its one-to-one continuation; such blobs become ignore regions even when
   their size looks like one person.  Person boxes on very short tracks become ``person?``.

Steps 1-3 live in :mod:`.foreground`, 4 in :mod:`.perspective`, 5-6 in :mod:`.blob_rules`,
7 in :mod:`.hog` and 8 in :mod:`.tracking`; :class:`VideoPedestrianLabeler` runs them in order.
The result is deterministic (no randomness; integer geometry; stable sorts).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .blob_rules import classify_blob, merge_fragments
from .foreground import ForegroundExtractor, connected_blobs, median_background
from .hog import HogSplitter
from .perspective import fit_height_model
from .structures import (AREA, FAR, GROUP, PERSON, UNCERTAIN, FrameLabels, H, HeightModel,
                         LabelerConfig, W, Y)
from .tracking import link_frames, merge_flags, track_ids

#: ``progress(iterable, desc, total)`` wrapper, e.g. around tqdm.
Progress = Callable[[Iterable, str, int], Iterable]


@dataclass
class _Scene:
    """What the labeller knows about the whole clip after the first pass."""
    img_shape: Tuple[int, int]  # (height, width)
    height_model: HeightModel
    far_row: float  # foot rows above this are in the far-field band


@dataclass
class _Tracks:
    """The non-noise blobs of every frame with their classes, merge flags and track ids."""
    blobs: List[np.ndarray]
    classes: List[List[str]]
    merged: List[np.ndarray]
    ids: List[np.ndarray]
    length: Dict[int, int]  # frames per track id


def _no_progress(iterable: Iterable, desc: str, total: int) -> Iterable:
    return iterable


class VideoPedestrianLabeler:
    """Label pedestrians of a static-camera video (see the module docstring).

    Args:
        cfg: parameters; defaults when None.

    Example:
        >>> labeler = VideoPedestrianLabeler()
        >>> result = labeler.label(frames)          # list of uint8 BGR frames
        >>> result['frames'][0].boxes, result['frames'][0].labels
    """

    def __init__(self, cfg: Optional[LabelerConfig] = None):
        self.cfg = cfg or LabelerConfig()

    def background(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Median background over at most ``bg_max_frames`` evenly spaced frames."""
        n = len(frames)
        k = min(n, self.cfg.bg_max_frames)
        idx = np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
        return median_background([frames[i] for i in idx])

    def label(self, frames: Sequence[np.ndarray], progress: Optional[Progress] = None) -> dict:
        """Label a whole clip.

        Args:
            frames: the frames (uint8 BGR HxWx3, all the same size), indexable; a lazy
                sequence (e.g. decoding on access) works too.
            progress: optional wrapper ``progress(iterable, desc, total)`` (e.g. tqdm).

        Returns:
            dict with ``frames`` (list of :class:`FrameLabels`), ``height_model``
            (:class:`HeightModel`), ``far_band`` (``[l, t, w, h]`` or None), ``background``
            (uint8 image) and ``blobs`` (per-frame raw blob arrays).
        """
        if len(frames) == 0:
            raise ValueError('no frames to label')
        wrap = progress or _no_progress
        img_shape = frames[0].shape[:2]
        background = self.background(frames)
        foreground = ForegroundExtractor(background, self.cfg)
        raw = self._detect_blobs(frames, foreground, wrap)
        scene = self._fit_scene(raw, img_shape)
        blobs, classes = self._classify_frames(frames, raw, scene, foreground, wrap)
        tracks = self._track(blobs, classes, scene.height_model)
        far_band = self._far_band(raw, scene.height_model, scene.far_row, img_shape)
        out = [self._frame_labels(tracks, t, far_band, img_shape) for t in range(len(frames))]
        return dict(frames=out, height_model=scene.height_model, far_band=far_band,
                    background=background, blobs=raw)

    # ------------------------------------------------------------------ stages of label()

    def _detect_blobs(self, frames: Sequence[np.ndarray], foreground: ForegroundExtractor,
                      wrap: Progress) -> List[np.ndarray]:
        """Stage 1: the raw foreground blobs of every frame."""
        n = len(frames)
        return [
            connected_blobs(foreground(frames[t]), self.cfg.min_area)
            for t in wrap(range(n), 'foreground', n)
        ]

    def _fit_scene(self, raw: Sequence[np.ndarray], img_shape: Tuple[int, int]) -> _Scene:
        """Stage 2: the perspective model of the clip and the far-field row."""
        hm = fit_height_model(raw, img_shape, self.cfg)
        far_row = hm.row_of_height(self.cfg.far_height) if hm.slope > 0 else -math.inf
        return _Scene(img_shape, hm, far_row)

    def _classify_frames(self, frames: Sequence[np.ndarray], raw: Sequence[np.ndarray],
                         scene: _Scene, foreground: ForegroundExtractor,
                         wrap: Progress) -> Tuple[List[np.ndarray], List[List[Optional[str]]]]:
        """Stage 3: merge fragments, split groups where HOG agrees, and classify the blobs.

        Returns:
            Per frame the (N, 5) blob array and the N classes (``None`` for noise).
        """
        merged = [merge_fragments(b, scene.height_model, self.cfg) for b in raw]
        hog = HogSplitter(self.cfg) if self.cfg.use_hog else None
        blobs, classes = [], []
        for t in wrap(range(len(frames)), 'rules', len(frames)):
            b, c = self._classify_frame(frames, t, merged[t], scene, foreground, hog)
            blobs.append(b)
            classes.append(c)
        return blobs, classes

    def _classify_frame(self, frames: Sequence[np.ndarray], t: int, merged: np.ndarray,
                        scene: _Scene, foreground: ForegroundExtractor,
                        hog: Optional[HogSplitter]) -> Tuple[np.ndarray, List[Optional[str]]]:
        """Classify the merged blobs of frame ``t``; a too-wide group is replaced by its
        person parts when HOG agrees on all of them."""
        blobs, classes = [], []
        mask = None  # the foreground mask of frame t, computed only when HOG needs it
        for b in merged:
            c = self._classify(b, scene)
            if c == GROUP and hog is not None and self._is_wide_group(b, scene.height_model):
                if mask is None:
                    mask = foreground(frames[t])
                parts, part_classes = self._hog_split(hog, frames[t], mask, b, scene)
                if parts:
                    blobs.extend(parts)
                    classes.extend(part_classes)
                    continue
            blobs.append(b)
            classes.append(c)
        arr = np.stack(blobs, 0) if blobs else np.zeros((0, 5), dtype=np.int64)
        return arr, classes

    def _classify(self, blob: np.ndarray, scene: _Scene) -> Optional[str]:
        return classify_blob(blob, scene.height_model, scene.img_shape, scene.far_row, self.cfg)

    def _is_wide_group(self, blob: np.ndarray, hm: HeightModel) -> bool:
        """Too wide for one person but not too tall: people side by side, which HOG may
        split."""
        eh = hm(blob[Y] + blob[H])
        return bool(blob[W] > self.cfg.width_range[1] * eh
                    and blob[H] <= self.cfg.height_range[1] * eh)

    def _hog_split(self, hog: HogSplitter, frame: np.ndarray, mask: np.ndarray,
                   blob: np.ndarray, scene: _Scene) -> Tuple[List[np.ndarray], List[str]]:
        """The person parts of ``blob`` and their classes, or ``([], [])`` unless HOG finds
        parts that are all classified ``person``."""
        hm = scene.height_model
        parts = hog.split(frame, mask, blob, float(hm(blob[Y] + blob[H])))
        classes = [self._classify(p, scene) for p in parts]
        if parts and all(c == PERSON for c in classes):
            return parts, classes
        return [], []

    def _track(self, blobs: Sequence[np.ndarray], classes: Sequence[Sequence[Optional[str]]],
               hm: HeightModel) -> _Tracks:
        """Stage 4: track the non-noise blobs (far-field ones included: they feed merges)."""
        keep = [np.array([c is not None for c in cls], dtype=bool) for cls in classes]
        kept = [b[k] for b, k in zip(blobs, keep)]
        kept_classes = [[c for c in cls if c is not None] for cls in classes]
        links = link_frames(kept, self.cfg.link_overlap)
        merged = merge_flags(kept, links, self._person_sized(kept, hm))
        ids = track_ids(kept, links)
        length: Dict[int, int] = {}
        for frame_ids in ids:
            for i in frame_ids:
                length[int(i)] = length.get(int(i), 0) + 1
        return _Tracks(kept, kept_classes, merged, ids, length)

    def _person_sized(self, blobs: Sequence[np.ndarray], hm: HeightModel) -> List[np.ndarray]:
        """Per frame, whether each blob has at least ``merge_min_area`` of a person's area."""
        big = []
        for b in blobs:
            eh = hm(b[:, Y] + b[:, H]) if len(b) else np.zeros(0)
            big.append(b[:, AREA] >= self.cfg.merge_min_area * hm.person_fill * eh**2
                       if len(b) else np.zeros(0, dtype=bool))
        return big

    def _frame_labels(self, tracks: _Tracks, t: int, far_band: Optional[List[float]],
                      img_shape: Tuple[int, int]) -> FrameLabels:
        """Stage 5: the written labels of frame ``t``: far-field blobs dropped, merges and
        short tracks demoted, ignore boxes padded, the far band appended."""
        boxes, labels, ids = [], [], []
        for j, (b, c) in enumerate(zip(tracks.blobs[t], tracks.classes[t])):
            if c == FAR:
                continue
            track_id = int(tracks.ids[t][j])
            if tracks.merged[t][j] and c == PERSON:
                c = GROUP
            if c == PERSON and tracks.length[track_id] < self.cfg.min_track_len:
                c = UNCERTAIN
            box = b[:4].astype(np.float64)
            if c != PERSON:
                box = self._pad(box, img_shape)
            boxes.append(box)
            labels.append(c)
            ids.append(track_id)
        if far_band is not None:
            boxes.append(np.asarray(far_band, dtype=np.float64))
            labels.append(GROUP)
            ids.append(-1)
        return FrameLabels(np.stack(boxes, 0) if boxes else np.zeros((0, 4)), labels, ids)

    # ------------------------------------------------------------------ helpers

    def _pad(self, box: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
        img_h, img_w = img_shape
        p = self.cfg.ignore_pad * box[3]
        x0, y0 = max(0.0, box[0] - p), max(0.0, box[1] - p)
        x1, y1 = min(float(img_w), box[0] + box[2] + p), min(float(img_h), box[1] + box[3] + p)
        return np.array([x0, y0, x1 - x0, y1 - y0])

    def _far_band(self, raw: Sequence[np.ndarray], hm: HeightModel, far_row: float,
                  img_shape: Tuple[int, int]) -> Optional[List[float]]:
        """Ignore band of the far field: the full image width, from the top of the highest
        moving blob whose foot is in the far field down to ``far_row`` (plus a margin)."""
        img_h, img_w = img_shape
        if not np.isfinite(far_row) or far_row <= 0:
            return None
        allb = [b for b in raw if len(b)]
        if not allb:
            return None
        b = np.concatenate(allb, axis=0)
        foot = b[:, Y] + b[:, H]
        far = b[foot <= far_row]
        if len(far) == 0:
            return None
        # The highest 0.5% of tops, robust to a single noise blob.
        top = float(np.percentile(far[:, Y], 0.5))
        top = max(0.0, top - 0.1 * self.cfg.far_height)
        bottom = min(float(img_h), far_row + 0.1 * self.cfg.far_height)
        if bottom <= top:
            return None
        return [0.0, top, float(img_w), bottom - top]
