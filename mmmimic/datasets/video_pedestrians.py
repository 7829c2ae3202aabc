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

The result is deterministic (no randomness; integer geometry; stable sorts).
"""
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Labels written for objects.  ``person`` is a positive; the others become ignore regions
#: in the Caltech evaluation.
PERSON = 'person'
UNCERTAIN = 'person?'
GROUP = 'people'

# Blob array columns.
X, Y, W, H, AREA = range(5)


@dataclass
class LabelerConfig:
    """Parameters of :class:`VideoPedestrianLabeler` (defaults tuned once, documented in
    ``docs/vtest_labels.md``; nothing here is a pixel coordinate of a particular video).

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
        track_ids: N track ids (>= 1, unique per track over the video, -1 for the far band).
    """
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: List[str] = field(default_factory=list)
    track_ids: List[int] = field(default_factory=list)


# ----------------------------------------------------------------------------------------
# Low-level steps.


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
    foot = c[:, Y] + c[:, H]
    hgt = c[:, H]
    # Medians in foot-row bins of ~5% of the image height.
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
        slope, icpt = np.polyfit(np.array(xs), np.array(ys), 1, w=np.array(ws))
    else:
        slope, icpt = 0.0, float(np.median(hgt))
    for _ in range(3):
        pred = slope * foot + icpt
        inl = np.abs(hgt - pred) <= 0.2 * np.maximum(pred, 1)
        if inl.sum() < max(2, cfg.fit_min_blobs // 2):
            break
        if np.ptp(foot[inl]) < 1:
            slope, icpt = 0.0, float(np.median(hgt[inl]))
            break
        slope, icpt = np.polyfit(foot[inl], hgt[inl], 1)
    pred = np.maximum(slope * foot + icpt, 1)
    inl = np.abs(hgt - pred) <= 0.2 * pred
    fill_p = float(np.median(c[inl, AREA] / pred[inl]**2)) if inl.any() else 0.12
    return HeightModel(float(slope), float(icpt), int(inl.sum()), fill_p)


# ----------------------------------------------------------------------------------------
# Per-frame rules.


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
    changed = True
    while changed and len(blobs) > 1:
        changed = False
        best = None
        for i in range(len(blobs)):
            for j in range(i + 1, len(blobs)):
                a, b = blobs[i], blobs[j]
                u = _union(a, b)
                eh = float(hm(u[Y] + u[H]))
                if eh < 1:
                    continue
                gx = max(a[X], b[X]) - min(a[X] + a[W], b[X] + b[W])
                gy = max(a[Y], b[Y]) - min(a[Y] + a[H], b[Y] + b[H])
                # Parts stacked vertically (a body cut by a sign or a bar) may be further
                # apart than side-by-side parts.
                if gx > cfg.merge_gap * eh or gy > cfg.merge_vgap * eh:
                    continue
                if u[H] > cfg.height_range[1] * eh or u[W] > cfg.width_range[1] * eh:
                    continue
                # Merging must make the pair more person-like: the union is taller than
                # either part, or the parts overlap in columns (a split torso).
                if u[H] <= max(a[H], b[H]) and gx > 0:
                    continue
                key = (max(gx, gy), i, j)
                if best is None or key < best[0]:
                    best = (key, i, j, u)
        if best is not None:
            _, i, j, u = best
            blobs = [b for k, b in enumerate(blobs) if k not in (i, j)] + [u]
            changed = True
    if not blobs:
        return np.zeros((0, 5), dtype=np.int64)
    arr = np.stack(blobs, axis=0)
    return arr[np.lexsort((arr[:, Y], arr[:, X]))]


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
        return 'far'
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


# ----------------------------------------------------------------------------------------
# Tracking.


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

    def run(order, get_links, get_nbr_big):
        # ref[t][j]: merged area of the event a flagged blob descends from; age: frames.
        ref = [np.zeros(len(b)) for b in blobs]
        age = [np.zeros(len(b), dtype=np.int64) for b in blobs]
        flag = [np.zeros(len(b), dtype=bool) for b in blobs]
        prev = None
        for t in order:
            if prev is None:
                prev = t
                continue
            L = get_links(prev, t)  # rows: blobs of prev, cols: blobs of t
            prev_t, prev = prev, t
            if L.size == 0:
                continue
            nb = get_nbr_big(prev_t)
            area_prev = blobs[prev_t][:, AREA].astype(np.float64)
            area = blobs[t][:, AREA].astype(np.float64)
            n_in = (L & nb[:, None]).sum(axis=0)
            ev = n_in >= 2
            flag[t] |= ev
            ref[t][ev] = (L[:, ev] * (area_prev * nb)[:, None]).sum(axis=0)[...]
            one_in = L.sum(axis=0) == 1
            one_out = L.sum(axis=1) == 1
            for j in np.nonzero(one_in & ~ev)[0]:
                i = int(np.nonzero(L[:, j])[0][0])
                if (one_out[i] and flag[prev_t][i] and age[prev_t][i] < max_frames
                        and area[j] >= keep_area * ref[prev_t][i]):
                    flag[t][j] = True
                    ref[t][j] = ref[prev_t][i]
                    age[t][j] = age[prev_t][i] + 1
        return flag

    fwd = run(range(n), lambda p, t: links[p], lambda p: big[p])
    bwd = run(range(n - 1, -1, -1), lambda p, t: links[t].T, lambda p: big[p])
    return [f | b for f, b in zip(fwd, bwd)]


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


# ----------------------------------------------------------------------------------------
# HOG agreement.


class HogSplitter:
    """Split a too-wide blob into persons where OpenCV's default HOG people detector finds
    at least two non-overlapping people of the expected size inside it.

    Args:
        cfg: labeller parameters.
    """

    def __init__(self, cfg: LabelerConfig):
        if not hasattr(cv2, 'HOGDescriptor'):
            raise RuntimeError('cv2.HOGDescriptor is not available in this OpenCV build '
                               '(removed in OpenCV 5): install opencv-python<5 or run '
                               'without --hog')
        self.cfg = cfg
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def split(self, frame: np.ndarray, mask: np.ndarray, blob: np.ndarray,
              eh: float) -> List[np.ndarray]:
        """Return the person sub-blobs of ``blob`` (empty list: no agreement)."""
        img_h, img_w = mask.shape
        x, y, w, h = (int(v) for v in blob[:4])
        # The default detector sees a ~96 px person in a 64x128 window.
        s = 96.0 / max(eh, 1.0)
        mx, my = int(0.3 * eh) + 4, int(0.2 * eh) + 4
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(img_w, x + w + mx), min(img_h, y + h + my)
        crop = cv2.resize(frame[y0:y1, x0:x1], None, fx=s, fy=s,
                          interpolation=cv2.INTER_LINEAR)
        if crop.shape[0] < 128 or crop.shape[1] < 64:
            return []
        rects, weights = self.hog.detectMultiScale(crop, winStride=(4, 4), padding=(8, 8),
                                                   scale=1.05)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights).reshape(-1)
        dets = []
        for (rx, ry, rw, rh), sc in zip(rects, weights):
            if sc < self.cfg.hog_thr:
                continue
            # The person occupies the central ~(0.5 x 0.75) of the window.
            cx = x0 + (rx + rw / 2.0) / s
            ph = 0.75 * rh / s
            if not (0.7 * eh <= ph <= 1.4 * eh) or not (x <= cx <= x + w):
                continue
            dets.append((float(sc), cx))
        dets.sort(key=lambda d: (-d[0], d[1]))
        centers: List[float] = []
        for _, cx in dets:
            if all(abs(cx - c) >= 0.25 * eh for c in centers):
                centers.append(cx)
        if len(centers) < 2:
            return []
        centers.sort()
        cuts = [x] + [int(round((a + b) / 2)) for a, b in zip(centers, centers[1:])] + [x + w]
        parts = []
        sub = mask[y:y + h]
        for c0, c1 in zip(cuts, cuts[1:]):
            m = sub[:, c0:c1]
            ys, xs = np.nonzero(m)
            if len(xs) == 0:
                return []
            parts.append(np.array([c0 + xs.min(), y + ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1, len(xs)], dtype=np.int64))
        return parts


# ----------------------------------------------------------------------------------------
# The labeller.


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

    def label(self,
              frames: Sequence[np.ndarray],
              progress: Optional[Callable[[Iterable, str, int], Iterable]] = None) -> dict:
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
        cfg = self.cfg
        n = len(frames)
        if n == 0:
            raise ValueError('no frames to label')
        wrap = progress or (lambda it, desc, total: it)
        first = frames[0]
        img_shape = first.shape[:2]
        bg = self.background(frames)
        fgx = ForegroundExtractor(bg, cfg)
        raw: List[np.ndarray] = []
        for t in wrap(range(n), 'foreground', n):
            raw.append(connected_blobs(fgx(frames[t]), cfg.min_area))
        hm = fit_height_model(raw, img_shape, cfg)
        far_row = hm.row_of_height(cfg.far_height) if hm.slope > 0 else -math.inf
        merged = [merge_fragments(b, hm, cfg) for b in raw]
        hog = HogSplitter(cfg) if cfg.use_hog else None
        cls: List[List[Optional[str]]] = []
        blobs: List[np.ndarray] = []
        for t in wrap(range(n), 'rules', n):
            cur, lab = [], []
            mask = None
            for b in merged[t]:
                c = classify_blob(b, hm, img_shape, far_row, cfg)
                if c == GROUP and hog is not None and b[W] > cfg.width_range[1] * hm(
                        b[Y] + b[H]) and b[H] <= cfg.height_range[1] * hm(b[Y] + b[H]):
                    if mask is None:
                        mask = fgx(frames[t])
                    parts = hog.split(frames[t], mask, b, float(hm(b[Y] + b[H])))
                    pl = [classify_blob(p, hm, img_shape, far_row, cfg) for p in parts]
                    if parts and all(p == PERSON for p in pl):
                        cur.extend(parts)
                        lab.extend(pl)
                        continue
                cur.append(b)
                lab.append(c)
            blobs.append(np.stack(cur, 0) if cur else np.zeros((0, 5), dtype=np.int64))
            cls.append(lab)
        # Tracking over the non-noise blobs (far-field ones included: they feed merges).
        keep = [np.array([c is not None for c in lab], dtype=bool) for lab in cls]
        tb = [b[k] for b, k in zip(blobs, keep)]
        tc = [[c for c in lab if c is not None] for lab in cls]
        links = link_frames(tb, cfg.link_overlap)
        big = []
        for b in tb:
            eh = hm(b[:, Y] + b[:, H]) if len(b) else np.zeros(0)
            big.append(b[:, AREA] >= cfg.merge_min_area * hm.person_fill * eh**2
                       if len(b) else np.zeros(0, dtype=bool))
        flags = merge_flags(tb, links, big)
        tids = track_ids(tb, links)
        track_len: Dict[int, int] = {}
        for ids in tids:
            for i in ids:
                track_len[int(i)] = track_len.get(int(i), 0) + 1
        far_band = self._far_band(raw, hm, far_row, img_shape)
        out = []
        for t in range(n):
            boxes, labels, ids = [], [], []
            for j, (b, c) in enumerate(zip(tb[t], tc[t])):
                if c == 'far':
                    continue
                if flags[t][j] and c == PERSON:
                    c = GROUP
                if c == PERSON and track_len[int(tids[t][j])] < cfg.min_track_len:
                    c = UNCERTAIN
                box = b[:4].astype(np.float64)
                if c != PERSON:
                    box = self._pad(box, img_shape)
                boxes.append(box)
                labels.append(c)
                ids.append(int(tids[t][j]))
            if far_band is not None:
                boxes.append(np.asarray(far_band, dtype=np.float64))
                labels.append(GROUP)
                ids.append(-1)
            out.append(
                FrameLabels(
                    np.stack(boxes, 0) if boxes else np.zeros((0, 4)), labels, ids))
        return dict(frames=out, height_model=hm, far_band=far_band, background=bg,
                    blobs=raw)

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
