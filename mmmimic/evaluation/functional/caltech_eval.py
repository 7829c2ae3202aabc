"""The official Caltech Pedestrian evaluation (log-average miss rate), vectorised with numpy.

A transcription of the MATLAB toolbox, Caltech code 3.2.1: ``dbEval.m`` (experiment settings,
``loadGt``/``filterGtFun``, ``loadDt``, ``evalAlgs``), ``bbGt.m`` (``evalRes``, ``compOas``,
``compRoc``) and ``bbApply.m`` (``resize``). The stages are separate functions, in the order the
toolbox runs them:

1. :func:`filter_gt`: labels kept, ignore regions for an experiment setting.
2. :func:`standardize_aspect`: non-ignore gt (and optionally detections) to aspect 0.41.
3. :func:`filter_detections`: detection height filter (ratio 1.25).
4. :func:`match_detections`: ``bbGt('evalRes')`` for every image at once.
5. :func:`compute_roc`, :func:`miss_rates_at`, :func:`log_average`: ``bbGt('compRoc')`` and the
   log-average miss rate.

:func:`log_average_miss_rate` runs 4-5 on already filtered boxes; :func:`evaluate_caltech` runs
1-5 for several settings from raw per-image annotations (:func:`match_caltech` is its steps 1-4,
for callers that need the per-detection matches). All boxes are ``[x, y, w, h]``.

Beside the toolbox's miss rates, :func:`average_precision` gives the average precision of the
same matched detections (all-point interpolation, VOC2010 style), a summary that uses every
detection rather than the few at FPPI 1e-2..1.

Internally every stage works on *flat* arrays (all images concatenated, plus an image index per
box), so no stage loops over images or detections in Python; see :func:`match_detections` for the
one loop the greedy matching needs.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

ASPECT_RATIO = 0.41
#: [x0, y0, x1, y1]: non-ignore gt must lie inside (dbEval ``bnds`` for 640x480 frames)
CALTECH_BORDER = (5, 5, 635, 475)
HEIGHT_FILTER_RATIO = 1.25
#: labels kept by dbEval's loadGt; every other label (e.g. ``person-fa``) is dropped
KEPT_LABELS = ('person', 'person?', 'people', 'ignore')

#: size limit of the dense (images x detections x gts) array of the greedy matching step
MAX_DENSE_CELLS = 1 << 22

_INF = math.inf
#: dbEval.m experiments: height range, visibility range, aspect filter, IoU threshold
CALTECH_SETTINGS: Dict[str, Dict] = {
    'Reasonable': dict(height_range=(50, _INF), vis_range=(.65, _INF), aspect_range=0, iou_thr=.5),
    'All': dict(height_range=(20, _INF), vis_range=(.2, _INF), aspect_range=0, iou_thr=.5),
    'Scale=large': dict(height_range=(100, _INF), vis_range=(_INF, _INF), aspect_range=0,
                        iou_thr=.5),
    'Scale=near': dict(height_range=(80, _INF), vis_range=(_INF, _INF), aspect_range=0, iou_thr=.5),
    'Scale=medium': dict(height_range=(30, 80), vis_range=(_INF, _INF), aspect_range=0, iou_thr=.5),
    'Scale=far': dict(height_range=(20, 30), vis_range=(_INF, _INF), aspect_range=0, iou_thr=.5),
    'Occ=none': dict(height_range=(50, _INF), vis_range=(_INF, _INF), aspect_range=0, iou_thr=.5),
    'Occ=partial': dict(height_range=(50, _INF), vis_range=(.65, 1), aspect_range=0, iou_thr=.5),
    'Occ=heavy': dict(height_range=(50, _INF), vis_range=(.2, .65), aspect_range=0, iou_thr=.5),
    'Ar=all': dict(height_range=(50, _INF), vis_range=(_INF, _INF), aspect_range=0, iou_thr=.5),
    'Ar=typical': dict(height_range=(50, _INF), vis_range=(_INF, _INF), aspect_range=.1,
                       iou_thr=.5),
    'Ar=atypical': dict(height_range=(50, _INF), vis_range=(_INF, _INF), aspect_range=-.1,
                        iou_thr=.5),
    'Overlap=25': dict(height_range=(50, _INF), vis_range=(.65, _INF), aspect_range=0,
                       iou_thr=.25),
    'Overlap=50': dict(height_range=(50, _INF), vis_range=(.65, _INF), aspect_range=0, iou_thr=.5),
    'Overlap=75': dict(height_range=(50, _INF), vis_range=(.65, _INF), aspect_range=0,
                       iou_thr=.75),
}

#: (fppi_range, num_points) of the two standard summaries
MR_RANGES = {'MR-2': ((-2, 0), 9), 'MR-4': ((-4, 0), 9)}


def get_setting(setting: Union[str, Dict]) -> Dict:
    """Return the experiment dict of a dbEval setting name, or check a custom dict.

    Args:
        setting: a key of :data:`CALTECH_SETTINGS`, or a dict with ``height_range``,
            ``vis_range`` and optionally ``aspect_range`` (0) and ``iou_thr`` (0.5).

    Returns:
        dict with ``height_range``, ``vis_range``, ``aspect_range``, ``iou_thr``.
    """
    if isinstance(setting, str):
        if setting not in CALTECH_SETTINGS:
            raise KeyError(f'unknown Caltech setting {setting!r}; known: '
                           f'{", ".join(CALTECH_SETTINGS)}')
        return dict(CALTECH_SETTINGS[setting])
    missing = {'height_range', 'vis_range'} - set(setting)
    if missing:
        raise KeyError(f'custom Caltech setting {setting} lacks {sorted(missing)}')
    return dict(aspect_range=0, iou_thr=.5, **setting)


# --------------------------------------------------------------------------------------------------
# 1-3: ground truth and detection filtering
# --------------------------------------------------------------------------------------------------
def filter_gt(bboxes: np.ndarray,
              bboxes_vis: np.ndarray,
              labels: Sequence[str],
              height_range: Tuple[float, float],
              vis_range: Tuple[float, float],
              aspect_range: float = 0,
              border: Optional[Sequence[float]] = CALTECH_BORDER,
              ignore: Optional[np.ndarray] = None,
              aspect_ratio: float = ASPECT_RATIO) -> Tuple[np.ndarray, np.ndarray]:
    """Label filter and ignore flags of one experiment setting (dbEval ``filterGtFun``).

    A box is kept if its label is in :data:`KEPT_LABELS`. A kept box counts (is not an ignore
    region) only if its label is ``person``, ``h`` is in ``[hr0, hr1)``, the visible fraction
    ``vf = area(bbox_vis) / area(bbox)`` (``inf`` when ``bbox_vis`` is all zero) is in
    ``[vr0, vr1]``, ``sign(ar) * |w/h - 0.41| < ar`` when ``ar != 0``, and the box lies inside
    ``border``; otherwise it is an ignore region.

    Args:
        bboxes: (k, 4) ``[x, y, w, h]``.
        bboxes_vis: (k, 4) visible part ``[x, y, w, h]``, all zero when not annotated.
        labels: k label strings.
        height_range, vis_range, aspect_range: the experiment (see :data:`CALTECH_SETTINGS`).
        border: ``[x0, y0, x1, y1]`` (None: no border test).
        ignore: optional (k,) flags that force an ignore region (the ``ign`` column of bbGt
            files, used by the new annotations).
        aspect_ratio: the standard aspect ratio (0.41).

    Returns:
        ``(keep, ignore)``: two (k,) bool arrays; ``ignore`` is meaningful where ``keep``.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    bboxes_vis = np.asarray(bboxes_vis, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=str).reshape(-1)
    if not len(bboxes) == len(bboxes_vis) == len(labels):
        raise ValueError(f'filter_gt: bboxes {bboxes.shape}, bboxes_vis {bboxes_vis.shape} and '
                         f'labels ({len(labels)},) disagree')
    keep = np.isin(labels, KEPT_LABELS)
    x, y, w, h = bboxes.T
    p = (labels == 'person') & (h >= height_range[0]) & (h < height_range[1])
    with np.errstate(divide='ignore', invalid='ignore'):
        vf = bboxes_vis[:, 2] * bboxes_vis[:, 3] / (w * h)
        vf[np.all(bboxes_vis == 0, axis=1)] = np.inf
        p &= (vf >= vis_range[0]) & (vf <= vis_range[1])
        if aspect_range != 0:
            p &= np.sign(aspect_range) * np.abs(w / h - aspect_ratio) < aspect_range
    if border is not None:
        p &= (x >= border[0]) & (x + w <= border[2]) & (y >= border[1]) & (y + h <= border[3])
    if ignore is not None:
        p &= ~np.asarray(ignore, dtype=bool).reshape(-1)
    return keep, ~p


def standardize_aspect(bboxes: np.ndarray, aspect_ratio: float = ASPECT_RATIO) -> np.ndarray:
    """Resize boxes to a fixed aspect ratio around their centre, keeping the height.

    ``bbApply('resize', bb, 1, 0, ar)``: ``d = ar * h - w; x -= d / 2; w += d`` (the same float
    operations, so results are bit-identical to the toolbox).

    Args:
        bboxes: (n, >=4) ``[x, y, w, h, ...]``; extra columns are kept.
        aspect_ratio: target ``w / h``.

    Returns:
        a new float64 array of the same shape.
    """
    out = np.array(bboxes, dtype=np.float64, copy=True)
    if out.size:
        d = out[:, 3] * aspect_ratio - out[:, 2]
        out[:, 0] -= d / 2
        out[:, 2] += d
    return out


def filter_detections(bboxes: np.ndarray,
                      height_range: Tuple[float, float],
                      ratio: float = HEIGHT_FILTER_RATIO) -> np.ndarray:
    """Detection height filter of dbEval's ``evalAlgs``: keep ``hr0/ratio <= h < hr1*ratio``.

    Args:
        bboxes: (n, >=4) ``[x, y, w, h, ...]``.
        height_range: the experiment's gt height range.
        ratio: the filter ratio (1.25).

    Returns:
        (n,) bool mask of the kept detections.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64)
    if bboxes.size == 0:  # no detections (a reshape to (0, -1) is ambiguous)
        return np.zeros(len(bboxes), dtype=bool)
    h = bboxes.reshape(len(bboxes), -1)[:, 3]
    # same float operations as MATLAB's hr.*[1/filter filter]
    return (h >= height_range[0] * (1 / ratio)) & (h < height_range[1] * ratio)


# --------------------------------------------------------------------------------------------------
# 4: matching (bbGt evalRes + compOas)
# --------------------------------------------------------------------------------------------------
def _overlaps(db: np.ndarray, gb: np.ndarray, gign: np.ndarray) -> np.ndarray:
    """compOas for pairs of boxes: IoU, or intersection over detection area for ignore gts."""
    dx, dy, dw, dh = db.T
    gx, gy, gw, gh = gb.T
    w = np.minimum(dx + dw, gx + gw) - np.maximum(dx, gx)
    h = np.minimum(dy + dh, gy + gh) - np.maximum(dy, gy)
    t = w * h
    da = dw * dh
    u = np.where(gign, da, da + gw * gh - t)
    with np.errstate(divide='ignore', invalid='ignore'):
        oa = t / u
    return np.where((w > 0) & (h > 0), oa, 0.)


def _greedy_dense(pair_img: np.ndarray, pair_drank: np.ndarray, pair_grank: np.ndarray,
                  pair_oa: np.ndarray, num_img: int) -> np.ndarray:
    """Greedy matching of candidate pairs, all images at once, one step per detection rank.

    Step ``r`` gives the ``r``-th best candidate detection of every image the last unmatched gt
    with the highest overlap (evalRes keeps the last of equal overlaps). Returns (n_pairs,) bool:
    the pairs that became matches.
    """
    dmax = int(pair_drank.max()) + 1
    gmax = int(pair_grank.max()) + 1
    oa = np.full((num_img, dmax, gmax), -1.)
    oa[pair_img, pair_drank, pair_grank] = pair_oa
    taken = np.zeros((num_img, gmax), dtype=bool)
    chosen = np.full((num_img, dmax), -1, dtype=np.int64)
    rows = np.arange(num_img)
    for r in range(dmax):
        cur = np.where(taken, -1., oa[:, r, :])
        g = gmax - 1 - np.argmax(cur[:, ::-1], axis=1)
        ok = cur[rows, g] >= 0
        taken[rows[ok], g[ok]] = True
        chosen[ok, r] = g[ok]
    return chosen[pair_img, pair_drank] == pair_grank


def _greedy_chunked(pair_img: np.ndarray,
                    pair_drank: np.ndarray,
                    pair_grank: np.ndarray,
                    pair_oa: np.ndarray,
                    num_img: int,
                    max_cells: Optional[int] = None) -> np.ndarray:
    """:func:`_greedy_dense` on groups of images of similar size, so that one crowded image
    does not inflate the dense array of all the others (memory stays below ``max_cells``)."""
    max_cells = MAX_DENSE_CELLS if max_cells is None else max_cells
    ndet = np.zeros(num_img, dtype=np.int64)
    ngt = np.zeros(num_img, dtype=np.int64)
    np.maximum.at(ndet, pair_img, pair_drank + 1)
    np.maximum.at(ngt, pair_img, pair_grank + 1)
    if num_img * ndet.max() * ngt.max() <= max_cells:
        return _greedy_dense(pair_img, pair_drank, pair_grank, pair_oa, num_img)
    order = np.argsort(ndet * ngt, kind='stable')
    won = np.zeros(len(pair_img), dtype=bool)
    start = 0
    while start < num_img:
        stop, dmax, gmax = start + 1, ndet[order[start]], ngt[order[start]]
        while stop < num_img:
            d2, g2 = max(dmax, ndet[order[stop]]), max(gmax, ngt[order[stop]])
            if (stop + 1 - start) * d2 * g2 > max_cells:
                break
            stop, dmax, gmax = stop + 1, d2, g2
        group = order[start:stop]
        local = np.full(num_img, -1, dtype=np.int64)
        local[group] = np.arange(len(group))
        sel = local[pair_img] >= 0
        won[sel] = _greedy_dense(local[pair_img[sel]], pair_drank[sel], pair_grank[sel],
                                 pair_oa[sel], len(group))
        start = stop
    return won


def match_detections(gt_img: np.ndarray,
                     gt_bboxes: np.ndarray,
                     gt_ignore: np.ndarray,
                     dt_img: np.ndarray,
                     dt_bboxes: np.ndarray,
                     dt_scores: np.ndarray,
                     num_images: int,
                     iou_thr: float = 0.5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bbGt('evalRes')`` on every image at once, from flat arrays.

    Per image: detections by descending score and gts with ignore regions last (stable sorts);
    each detection in turn takes the last unmatched non-ignore gt of highest overlap ``>= iou_thr``
    (TP), else it is ignored if some ignore region covers ``>= iou_thr`` of it, else it is a FP.

    Only *candidate* pairs (non-ignore gt, overlap ``>= iou_thr``) can interact. A gt that is the
    candidate of at most one detection needs no ordering, so those are resolved by vectorised
    reductions; the images where two detections compete for a gt are resolved together by
    :func:`_greedy_dense`, whose Python loop runs once per detection *rank*, not per detection.

    Args:
        gt_img: (k,) image index of every gt box.
        gt_bboxes: (k, 4) ``[x, y, w, h]``.
        gt_ignore: (k,) ignore-region flags.
        dt_img: (m,) image index of every detection.
        dt_bboxes: (m, 4) ``[x, y, w, h]``.
        dt_scores: (m,) scores.
        num_images: number of images (indices are ``< num_images``).
        iou_thr: overlap threshold.

    Returns:
        ``(dt_status, gt_matched, dt_order)``: (m,) int8, 1 TP / 0 FP / -1 ignored; (k,) bool;
        (m,) the detections in the toolbox's concatenation order (by image, then score).
    """
    gt_img = np.asarray(gt_img, dtype=np.int64).reshape(-1)
    dt_img = np.asarray(dt_img, dtype=np.int64).reshape(-1)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    dt_bboxes = np.asarray(dt_bboxes, dtype=np.float64).reshape(-1, 4)
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    dt_scores = np.asarray(dt_scores, dtype=np.float64).reshape(-1)
    num_dt, num_gt = len(dt_img), len(gt_img)
    if len(dt_bboxes) != num_dt or len(dt_scores) != num_dt:
        raise ValueError(f'match_detections: dt_img ({num_dt},), dt_bboxes {dt_bboxes.shape} and '
                         f'dt_scores {dt_scores.shape} disagree')
    if len(gt_bboxes) != num_gt or len(gt_ignore) != num_gt:
        raise ValueError(f'match_detections: gt_img ({num_gt},), gt_bboxes {gt_bboxes.shape} and '
                         f'gt_ignore {gt_ignore.shape} disagree')
    # the toolbox's order: gts by image with ignore regions last, detections by descending score
    gt_order = np.lexsort((gt_ignore, gt_img))
    dt_order = np.lexsort((-dt_scores, dt_img))
    gt_img_s, gt_ign_s, gt_box_s = gt_img[gt_order], gt_ignore[gt_order], gt_bboxes[gt_order]
    dt_img_s, dt_box_s = dt_img[dt_order], dt_bboxes[dt_order]

    # every (detection, gt) pair of the same image, detection-major, gts in sorted order
    gts_per_img = np.bincount(gt_img_s, minlength=num_images)
    first_gt = np.cumsum(gts_per_img) - gts_per_img
    pairs_per_dt = gts_per_img[dt_img_s]
    pair_dt = np.repeat(np.arange(num_dt), pairs_per_dt)
    pair_gt = (first_gt[dt_img_s][pair_dt] + np.arange(len(pair_dt)) -
               np.repeat(np.cumsum(pairs_per_dt) - pairs_per_dt, pairs_per_dt))
    pair_ign = gt_ign_s[pair_gt]
    pair_overlap = _overlaps(dt_box_s[pair_dt], gt_box_s[pair_gt], pair_ign)
    pair_hit = pair_overlap >= iou_thr

    status = np.zeros(num_dt, dtype=np.int8)  # in dt_order
    status[pair_dt[pair_hit & pair_ign]] = -1
    gt_taken = np.zeros(num_gt, dtype=bool)  # in gt_order
    candidate = pair_hit & ~pair_ign
    cand_dt, cand_gt, cand_overlap = (pair_dt[candidate], pair_gt[candidate],
                                      pair_overlap[candidate])
    if len(cand_dt):
        contested_img = np.zeros(num_images, dtype=bool)
        contested_img[gt_img_s[np.bincount(cand_gt, minlength=num_gt) >= 2]] = True
        easy = ~contested_img[dt_img_s[cand_dt]]
        # uncontested: the detection is a TP on the last of its highest-overlap candidates
        easy_dt, easy_gt, easy_overlap = cand_dt[easy], cand_gt[easy], cand_overlap[easy]
        by_dt_overlap_gt = np.lexsort((easy_gt, easy_overlap, easy_dt))
        is_best = np.ones(len(by_dt_overlap_gt), dtype=bool)
        is_best[:-1] = easy_dt[by_dt_overlap_gt][1:] != easy_dt[by_dt_overlap_gt][:-1]
        status[easy_dt] = 1
        gt_taken[easy_gt[by_dt_overlap_gt[is_best]]] = True
        # contested images: greedy by detection rank, all images together
        hard_dt, hard_gt, hard_overlap = cand_dt[~easy], cand_gt[~easy], cand_overlap[~easy]
        if len(hard_dt):
            hard_imgs, pair_img = np.unique(dt_img_s[hard_dt], return_inverse=True)
            dets, pair_det = np.unique(hard_dt, return_inverse=True)
            gts, pair_gt_idx = np.unique(hard_gt, return_inverse=True)
            det_img = np.searchsorted(hard_imgs, dt_img_s[dets])
            gt_img_local = np.searchsorted(hard_imgs, gt_img_s[gts])
            det_rank = np.arange(len(dets)) - np.searchsorted(det_img, det_img)
            gt_rank = np.arange(len(gts)) - np.searchsorted(gt_img_local, gt_img_local)
            won = _greedy_chunked(pair_img.reshape(-1), det_rank[pair_det.reshape(-1)],
                                  gt_rank[pair_gt_idx.reshape(-1)], hard_overlap, len(hard_imgs))
            status[hard_dt[won]] = 1
            gt_taken[hard_gt[won]] = True

    dt_status = np.empty(num_dt, dtype=np.int8)
    dt_status[dt_order] = status
    gt_matched = np.empty(num_gt, dtype=bool)
    gt_matched[gt_order] = gt_taken
    return dt_status, gt_matched, dt_order


# --------------------------------------------------------------------------------------------------
# 5: curve and log-average miss rate (bbGt compRoc, dbEval)
# --------------------------------------------------------------------------------------------------
def compute_roc(dt_status: np.ndarray, dt_scores: np.ndarray, dt_order: np.ndarray,
                num_gt: int, num_images: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The FPPI-recall curve of ``bbGt('compRoc', gt, dt, 1)``.

    Args:
        dt_status: (m,) 1 TP / 0 FP / -1 ignored (from :func:`match_detections`).
        dt_scores: (m,) scores.
        dt_order: (m,) the toolbox's concatenation order of the detections (by image, then score);
            the stable global sort keeps it for equal scores.
        num_gt: number of non-ignore gts over all images.
        num_images: number of evaluated images (empty ones included).

    Returns:
        ``(fppi, recall, scores)`` at every counted detection, by descending score.
    """
    o = dt_order[dt_status[dt_order] != -1]
    o = o[np.argsort(-dt_scores[o], kind='stable')]
    tp = dt_status[o] == 1
    with np.errstate(divide='ignore', invalid='ignore'):
        fppi = np.cumsum(~tp) / num_images
        recall = np.cumsum(tp) / num_gt
    return fppi, recall, dt_scores[o]


def reference_points(fppi_range: Tuple[float, float] = (-2, 0), num_points: int = 9) -> np.ndarray:
    """``10 .^ (lo : step : hi)`` (MR-2: ``10.^(-2:.25:0)``, MR-4: ``10.^(-4:.5:0)``)."""
    # scalar pow per point: numpy's vectorised power is not correctly rounded (10**-1 != 0.1),
    # and an FPPI of exactly 0.1 must count as <= the reference, as in MATLAB
    exps = np.linspace(fppi_range[0], fppi_range[1], num_points)
    return np.array([10.0**float(e) for e in exps])


def miss_rates_at(fppi: np.ndarray, recall: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Miss rate at each reference FPPI: ``1 - recall`` of the last curve point with
    ``fppi <= ref``, the curve starting at ``(-inf, 0)`` (so 1 before the first point); 1 at
    every reference when there are no detections."""
    refs = np.asarray(refs, dtype=np.float64)
    if len(fppi) == 0:
        return np.ones_like(refs)
    xs = np.concatenate([[-np.inf], fppi])
    ys = np.concatenate([[0.], recall])
    return 1 - ys[np.searchsorted(xs, refs, side='right') - 1]


def log_average(miss_rates: np.ndarray, log_floor: Optional[float] = None) -> float:
    """``exp(mean(log(mr)))``; dbEval has no floor (one zero gives 0), acfTest and others use
    ``max(mr, 1e-10)``: pass ``log_floor=1e-10`` for that convention."""
    mr = np.asarray(miss_rates, dtype=np.float64)
    if log_floor is not None:
        mr = np.maximum(mr, log_floor)
    with np.errstate(divide='ignore'):
        return float(np.exp(np.mean(np.log(mr))))


def ap_from_counts(cum_tp: np.ndarray, cum_fp: np.ndarray,
                   num_gt: Union[float, np.ndarray]) -> np.ndarray:
    """All-point interpolated average precision from cumulative counts (VOC2010 and later).

    ``AP = sum_k (recall_k - recall_{k-1}) * max_{j >= k} precision_j`` over the curve points
    ``k`` (the precision made monotone non-increasing, then summed over the recall steps). The
    counts may be weighted (a frame drawn twice by a bootstrap counts twice); every leading axis is
    an independent curve, so one call scores many resamples.

    Args:
        cum_tp: (..., t) true positives counted at each point, by descending score threshold.
        cum_fp: (..., t) false positives, same shape.
        num_gt: number of (non-ignore) ground truths, a scalar or shaped like the leading axes.

    Returns:
        (...) AP as fractions: 0 when there is no point (no detection), NaN where ``num_gt`` is 0
        (recall is undefined without a ground truth, as the miss rate is).
    """
    cum_tp = np.asarray(cum_tp, dtype=np.float64)
    cum_fp = np.asarray(cum_fp, dtype=np.float64)
    if cum_tp.shape != cum_fp.shape:
        raise ValueError(f'ap_from_counts: cum_tp {cum_tp.shape} and cum_fp {cum_fp.shape} differ')
    num_gt = np.asarray(num_gt, dtype=np.float64)
    if cum_tp.shape[-1] == 0:
        return np.where(num_gt > 0, 0., np.nan) * np.ones(cum_tp.shape[:-1])
    seen = cum_tp + cum_fp
    with np.errstate(divide='ignore', invalid='ignore'):
        # a point with nothing counted yet (zero-weight detections) has no precision; it adds
        # no recall either, so 0 is neutral in the envelope
        precision = np.where(seen > 0, cum_tp / seen, 0.)
        envelope = np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]
        d_tp = np.diff(cum_tp, axis=-1, prepend=0.)
        ap = (d_tp * envelope).sum(axis=-1) / num_gt
    return np.where(num_gt > 0, ap, np.nan)


def average_precision(dt_status: np.ndarray, dt_scores: np.ndarray, num_gt: int) -> float:
    """Average precision of matched detections (all-point interpolation, see
    :func:`ap_from_counts`).

    Uses exactly the detections the miss rate uses: ignored ones (status -1: matched to an
    ignore region) are dropped, the rest are TP (1) or FP (0). The curve has one point per
    *distinct* score: detections of equal score enter together, so the AP does not depend on the
    order of tied detections (the FPPI curve of :func:`compute_roc` keeps the toolbox's order
    instead).

    Args:
        dt_status: (m,) 1 TP / 0 FP / -1 ignored (from :func:`match_detections`).
        dt_scores: (m,) scores.
        num_gt: number of non-ignore gts over all images.

    Returns:
        AP as a fraction; 0 without any counted detection; NaN when ``num_gt`` is 0.
    """
    status = np.asarray(dt_status).reshape(-1)
    scores = np.asarray(dt_scores, dtype=np.float64).reshape(-1)
    if len(status) != len(scores):
        raise ValueError(f'average_precision: dt_status ({len(status)},) and dt_scores '
                         f'({len(scores)},) disagree')
    counted = status != -1
    scores, tp = scores[counted], status[counted] == 1
    order = np.argsort(-scores)  # any order of ties: the points are at distinct scores
    return _ap_sorted(tp[order], scores[order], num_gt)


def _ap_sorted(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> float:
    """:func:`average_precision` of counted detections already sorted by descending score."""
    last = np.ones(len(scores), dtype=bool)  # the last detection of each distinct score
    last[:-1] = scores[1:] != scores[:-1]
    return float(ap_from_counts(np.cumsum(tp)[last], np.cumsum(~tp)[last], num_gt))


def _image_name(i: int, img_ids: Optional[Sequence[str]]) -> str:
    return f'[{i}] (image {img_ids[i]})' if img_ids is not None else f'[{i}]'


def check_finite(flat: np.ndarray, img: np.ndarray, name: str, what: str,
                 img_ids: Optional[Sequence[str]] = None) -> None:
    """Refuse NaN/inf in flat per-box rows (a NaN score or box would be scored silently).

    Args:
        flat: (n, c) rows of all images.
        img: (n,) image index of each row.
        name: the argument name used in the message (``dts``, ``gts``).
        what: the kind of row (``detections``, ``boxes``).
        img_ids: optional image names, indexed like the images.

    Raises:
        ValueError: naming the first image with non-finite rows, how many of its rows are bad,
            and how many images are affected in all.
    """
    bad = ~np.isfinite(flat).all(axis=1)
    if not bad.any():
        return
    bad_img = np.unique(img[bad])
    first = int(bad_img[0])
    n_bad = int(np.count_nonzero(bad & (img == first)))
    n_all = int(np.count_nonzero(img == first))
    more = f' (and {len(bad_img) - 1} more images)' if len(bad_img) > 1 else ''
    raise ValueError(f'{name}{_image_name(first, img_ids)}: {n_bad} of {n_all} {what} have '
                     f'NaN/inf values{more}; refusing to score them')


def _flatten(arrays: Sequence[np.ndarray], ncol: int, name: str) -> Tuple[np.ndarray, np.ndarray]:
    mats = []
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.size == 0:
            a = a.reshape(0, ncol)
        if a.ndim != 2 or a.shape[1] != ncol:
            raise ValueError(f'{name}[{i}] must have shape (n, {ncol}), got {a.shape}')
        mats.append(a)
    counts = np.array([len(a) for a in mats], dtype=np.int64)
    flat = np.concatenate(mats) if mats else np.zeros((0, ncol))
    return flat, np.repeat(np.arange(len(mats)), counts)


def log_average_miss_rate(gts: Sequence[np.ndarray],
                          dts: Sequence[np.ndarray],
                          *,
                          fppi_range: Tuple[float, float] = (-2, 0),
                          num_points: int = 9,
                          iou_thr: float = 0.5,
                          log_floor: Optional[float] = None) -> Tuple[float, np.ndarray]:
    """Log-average miss rate of already filtered boxes (dbEval's evalRes + compRoc + MR).

    Args:
        gts: one (k, 5) array per image, ``[x, y, w, h, ignore]`` (filtered and standardised).
        dts: one (m, 5) array per image, ``[x, y, w, h, score]`` (filtered).
        fppi_range: log10 range of the reference FPPIs; MR-4 is ``(-4, 0)``.
        num_points: number of reference points.
        iou_thr: match threshold (``>=``).
        log_floor: None (dbEval) or e.g. 1e-10 (acfTest).

    Returns:
        ``(mr, miss_rates)``: the log-average miss rate (fraction, not %), and the miss rate at
        each reference point. NaN when there is no non-ignore gt; 1 (100 %) when there is no
        detection.

    Raises:
        ValueError: inputs of the wrong shape, or NaN/inf in a box or score (names the image).
    """
    if len(gts) != len(dts):
        raise ValueError(f'gts has {len(gts)} images but dts has {len(dts)}')
    g, gimg = _flatten(gts, 5, 'gts')
    d, dimg = _flatten(dts, 5, 'dts')
    check_finite(g, gimg, 'gts', 'boxes')
    check_finite(d, dimg, 'dts', 'detections')
    status, _, order = match_detections(gimg, g[:, :4], g[:, 4] != 0, dimg, d[:, :4], d[:, 4],
                                        len(gts), iou_thr)
    refs = reference_points(fppi_range, num_points)
    num_gt = int(np.count_nonzero(g[:, 4] == 0))
    if num_gt == 0:
        return math.nan, np.full(len(refs), np.nan)
    fppi, recall, _ = compute_roc(status, d[:, 4], order, num_gt, len(gts))
    mrs = miss_rates_at(fppi, recall, refs)
    return log_average(mrs, log_floor), mrs


def match_caltech(gts: Sequence[Dict],
                  dts: Sequence[np.ndarray],
                  settings: Sequence[Union[str, Dict]] = ('Reasonable', ),
                  *,
                  resize_dets: bool = True,
                  border: Optional[Sequence[float]] = CALTECH_BORDER,
                  aspect_ratio: float = ASPECT_RATIO,
                  height_filter_ratio: float = HEIGHT_FILTER_RATIO,
                  img_ids: Optional[Sequence[str]] = None) -> Dict[str, Dict]:
    """Steps 1-4 of dbEval for several settings: filtered gts and matched detections.

    :func:`evaluate_caltech` summarises this output; callers that need the per-detection outcome
    (e.g. a bootstrap over images, :mod:`.caltech_records`) use it directly. Matching is
    per image, so every image's outcome is independent of the other images.

    Args:
        gts, dts, settings, resize_dets, border, aspect_ratio, height_filter_ratio, img_ids: see
            :func:`evaluate_caltech`.

    Returns:
        ``{setting_name: {...}}`` with, for the detections kept by the height filter,
        ``dt_img`` (m,) image index, ``dt_scores`` (m,), ``dt_status`` (m,) 1 TP / 0 FP /
        -1 ignored, ``dt_order`` (m,) the toolbox's concatenation order (see
        :func:`match_detections`); and ``gt_per_image`` (num_images,) the number of non-ignore
        gts of each image, ``num_gt`` their sum, ``num_images``, ``iou_thr``.

    Raises:
        ValueError: per-image arrays of different lengths or shapes, or NaN/inf in a box or
            score (names the image and the count).
        KeyError: an unknown setting name (lists the known ones).
    """
    if len(gts) != len(dts):
        raise ValueError(f'gts has {len(gts)} images but dts has {len(dts)}')
    if img_ids is not None and len(img_ids) != len(gts):
        raise ValueError(f'img_ids has {len(img_ids)} names for {len(gts)} images')
    n_img = len(gts)
    gcount = np.array([len(g['labels']) for g in gts], dtype=np.int64)
    gimg = np.repeat(np.arange(n_img), gcount)
    gb = np.concatenate([np.asarray(g['bboxes'], np.float64).reshape(-1, 4) for g in gts] +
                        [np.zeros((0, 4))])
    gv = np.concatenate([np.asarray(g['bboxes_vis'], np.float64).reshape(-1, 4) for g in gts] +
                        [np.zeros((0, 4))])
    glbl = np.array([lbl for g in gts for lbl in g['labels']], dtype=str)
    gign = np.concatenate([
        np.asarray(g['ignore'], bool).reshape(-1) if g.get('ignore') is not None else np.zeros(
            len(g['labels']), bool) for g in gts
    ] + [np.zeros(0, bool)])
    if not len(gb) == len(gv) == len(gign) == len(glbl):
        raise ValueError('evaluate_caltech: some image has bboxes, bboxes_vis, labels or ignore '
                         'of different lengths')
    check_finite(np.c_[gb, gv], gimg, 'gts', 'boxes', img_ids)
    d, dimg = _flatten(dts, 5, 'dts')
    check_finite(d, dimg, 'dts', 'detections', img_ids)
    if resize_dets:
        d = standardize_aspect(d, aspect_ratio)

    matches = {}
    for i, setting in enumerate(settings):
        name = setting if isinstance(setting, str) else setting.get('name', f'custom{i}')
        exp = get_setting(setting if isinstance(setting, str) else
                          {k: v for k, v in setting.items() if k != 'name'})
        keep, ign = filter_gt(gb, gv, glbl, exp['height_range'], exp['vis_range'],
                              exp['aspect_range'], border, gign, aspect_ratio)
        g_b, g_ign, g_img = gb[keep], ign[keep], gimg[keep]
        g_b[~g_ign] = standardize_aspect(g_b[~g_ign], aspect_ratio)
        dk = filter_detections(d, exp['height_range'], height_filter_ratio)
        status, _, order = match_detections(g_img, g_b, g_ign, dimg[dk], d[dk, :4], d[dk, 4],
                                            n_img, exp['iou_thr'])
        gt_per_image = np.bincount(g_img[~g_ign], minlength=n_img)
        matches[name] = dict(dt_img=dimg[dk], dt_scores=d[dk, 4], dt_status=status,
                             dt_order=order, gt_per_image=gt_per_image,
                             num_gt=int(gt_per_image.sum()), num_images=n_img,
                             iou_thr=exp['iou_thr'])
    return matches


def evaluate_caltech(gts: Sequence[Dict],
                     dts: Sequence[np.ndarray],
                     settings: Sequence[Union[str, Dict]] = ('Reasonable', ),
                     *,
                     resize_dets: bool = True,
                     log_floor: Optional[float] = None,
                     border: Optional[Sequence[float]] = CALTECH_BORDER,
                     aspect_ratio: float = ASPECT_RATIO,
                     height_filter_ratio: float = HEIGHT_FILTER_RATIO,
                     img_ids: Optional[Sequence[str]] = None) -> Dict[str, Dict]:
    """The whole dbEval pipeline for one detector on a set of images, for several settings.

    Args:
        gts: per image a dict of raw annotations: ``bboxes`` (k, 4) ``[x, y, w, h]``,
            ``bboxes_vis`` (k, 4) (all zero when not annotated), ``labels`` (k strings) and
            optionally ``ignore`` (k,) (the bbGt ``ign`` column).
        dts: per image an (m, 5) array ``[x, y, w, h, score]`` in original image coordinates.
        settings: names of :data:`CALTECH_SETTINGS` or custom dicts (see :func:`get_setting`).
            Custom dicts are reported under ``setting.get('name', 'custom<i>')``.
        resize_dets: resize detections to aspect 0.41 (Caltech code 3.2.1; later evaluations turn
            this off).
        log_floor: None (dbEval) or 1e-10 (acfTest convention).
        border: ``[x0, y0, x1, y1]`` border of non-ignore gts (None: none).
        aspect_ratio: the standard aspect ratio 0.41.
        height_filter_ratio: detection height filter ratio 1.25.
        img_ids: optional name of each image, used in error messages.

    Returns:
        ``{setting_name: {'MR-2', 'MR-4'` (fractions), ``'AP'`` (fraction, at the setting's
        IoU threshold, see :func:`average_precision`), ``'iou_thr'``, ``'miss_rates'`` (dict of
        the two reference-point arrays), ``'fppi'``, ``'miss_rate'`` (the curve), ``'num_gt'``,
        ``'num_images'``, ``'num_dets'``}}``. Without any detection (a detector that finds
        nothing) MR-2 and MR-4 are 1 (100 %), AP is 0 and the curve is empty; without any
        non-ignore gt all three are NaN.

    Raises:
        ValueError: per-image arrays of different lengths or shapes, or NaN/inf in a box or
            score (names the image and the count).
        KeyError: an unknown setting name (lists the known ones).
    """
    matches = match_caltech(gts, dts, settings, resize_dets=resize_dets, border=border,
                            aspect_ratio=aspect_ratio, height_filter_ratio=height_filter_ratio,
                            img_ids=img_ids)
    results = {}
    for name, m in matches.items():
        status, scores, num_gt, n_img = (m['dt_status'], m['dt_scores'], m['num_gt'],
                                         m['num_images'])
        res = dict(num_gt=num_gt, num_images=n_img, num_dets=len(status), miss_rates={},
                   iou_thr=m['iou_thr'])
        fppi, recall, sorted_scores = compute_roc(status, scores, m['dt_order'], num_gt, n_img)
        res['fppi'], res['miss_rate'] = fppi, 1 - recall
        for key, (rng, npts) in MR_RANGES.items():
            if num_gt == 0:
                res[key], res['miss_rates'][key] = math.nan, np.full(npts, np.nan)
                continue
            mrs = miss_rates_at(fppi, recall, reference_points(rng, npts))
            res[key], res['miss_rates'][key] = log_average(mrs, log_floor), mrs
        # the curve's detections, by descending score: TP where the recall steps up (one sort)
        tp = np.diff(np.round(recall * num_gt), prepend=0.) > 0 if num_gt else recall > 0
        res['AP'] = _ap_sorted(tp, sorted_scores, num_gt)
        results[name] = res
    return results
