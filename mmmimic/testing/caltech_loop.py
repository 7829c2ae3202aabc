"""A line-by-line Python transcription of the toolbox's ``bbGt('evalRes')``/``compOas``/``compRoc``.

A test oracle, not part of the evaluation API: the *straightforward* implementation that tests
cross-check :mod:`mmmimic.evaluation.functional.caltech_eval` against on random data and that
``benchmarks/caltech_eval_speed.py`` times.
"""
import bisect
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def eval_res_loop(gt0: np.ndarray, dt0: np.ndarray,
                  thr: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """``bbGt('evalRes', gt0, dt0, thr)`` for one image, loops as in MATLAB.

    Args:
        gt0: (k, 5) ``[x, y, w, h, ignore]``.
        dt0: (m, 5) ``[x, y, w, h, score]``.
        thr: overlap threshold.

    Returns:
        ``(gt, dt)``: gt sorted (ignore last) with column 4 = 1 matched, 0 unmatched, -1 ignore;
        dt sorted by score with a 6th column 1 TP, 0 FP, -1 ignored.
    """
    gt0 = np.asarray(gt0, dtype=np.float64).reshape(-1, 5)
    dt0 = np.asarray(dt0, dtype=np.float64).reshape(-1, 5)
    dt = dt0[np.argsort(-dt0[:, 4], kind='stable')]
    gt = gt0[np.argsort(gt0[:, 4], kind='stable')].copy()
    gt[:, 4] = -gt[:, 4]
    dt = np.concatenate([dt, np.zeros((len(dt), 1))], axis=1)
    nd, ng = len(dt), len(gt)
    gt_rows = gt.tolist()
    dt_rows = dt.tolist()
    for d in range(nd):
        dx, dy, dw, dh = dt_rows[d][:4]
        de_x, de_y, da = dx + dw, dy + dh, dw * dh
        bst_oa, bstg, bstm = thr, -1, 0
        for g in range(ng):
            gx, gy, gw, gh, m = gt_rows[g]
            if m == 1:
                continue
            if bstm != 0 and m == -1:
                break
            w = min(de_x, gx + gw) - max(dx, gx)
            h = min(de_y, gy + gh) - max(dy, gy)
            if w <= 0 or h <= 0:
                oa = 0.
            else:
                t = w * h
                u = da if m == -1 else da + gw * gh - t
                oa = t / u
            if oa < bst_oa:
                continue
            bst_oa, bstg, bstm = oa, g, (1 if m == 0 else -1)
        if bstm == -1:
            dt_rows[d][5] = -1
        elif bstm == 1:
            gt_rows[bstg][4] = 1
            dt_rows[d][5] = 1
    return np.array(gt_rows).reshape(-1, 5), np.array(dt_rows).reshape(-1, 6)


def comp_roc_loop(gts: List[np.ndarray], dts: List[np.ndarray],
                  refs: np.ndarray) -> np.ndarray:
    """``bbGt('compRoc', gt, dt, 1, ref)``: recall at each reference FPPI, from evalRes output."""
    n_img = len(gts)
    gt = np.concatenate([g.reshape(-1, 5) for g in gts] + [np.zeros((0, 5))])
    gt = gt[gt[:, 4] != -1]
    dt = np.concatenate([d.reshape(-1, 6) for d in dts] + [np.zeros((0, 6))])
    dt = dt[dt[:, 5] != -1]
    if len(gt) == 0:
        return np.full(len(refs), np.nan)
    if len(dt) == 0:
        return np.zeros(len(refs))
    dt = dt[np.argsort(-dt[:, 4], kind='stable')]
    tp_flags = (dt[:, 5] == 1).tolist()
    xs, ys, fp, tp = [-np.inf], [0.], 0, 0
    for is_tp in tp_flags:
        tp += is_tp
        fp += not is_tp
        xs.append(fp / n_img)
        ys.append(tp / len(gt))
    # xs is non-decreasing: the last point with fppi <= r
    return np.array([ys[bisect.bisect_right(xs, r) - 1] for r in refs])


def log_average_miss_rate_loop(gts: Sequence[np.ndarray],
                               dts: Sequence[np.ndarray],
                               *,
                               fppi_range: Tuple[float, float] = (-2, 0),
                               num_points: int = 9,
                               iou_thr: float = 0.5,
                               log_floor: Optional[float] = None) -> Tuple[float, np.ndarray]:
    """Same contract as :func:`mmmimic.evaluation.functional.log_average_miss_rate`, computed
    with loops."""
    res = [eval_res_loop(g, d, iou_thr) for g, d in zip(gts, dts)]
    refs = [10.0**float(e) for e in np.linspace(fppi_range[0], fppi_range[1], num_points)]
    mrs = 1 - comp_roc_loop([r[0] for r in res], [r[1] for r in res], refs)
    return _log_average_loop(mrs, log_floor), mrs


def _log_average_loop(mrs: np.ndarray, log_floor: Optional[float]) -> float:
    logs = []
    for mr in mrs:
        mr = max(mr, log_floor) if log_floor is not None else mr
        logs.append(math.log(mr) if mr > 0 else -math.inf)
    return math.exp(sum(logs) / len(logs))


def evaluate_caltech_loop(gts: Sequence[Dict],
                          dts: Sequence[np.ndarray],
                          settings: Sequence[Dict],
                          resize_dets: bool = True,
                          log_floor: Optional[float] = None,
                          border: Sequence[float] = (5, 5, 635, 475),
                          ar: float = 0.41) -> Dict[str, Tuple[float, float]]:
    """The dbEval pipeline with per-box loops (loadGt/filterGtFun, loadDt, evalAlgs, compRoc).

    Args:
        gts, dts: as :func:`mmmimic.evaluation.functional.evaluate_caltech`.
        settings: dicts with ``name``, ``height_range``, ``vis_range``, ``iou_thr`` (aspect
            filter not supported here).

    Returns:
        ``{name: (MR-2, MR-4)}`` as fractions.
    """
    out = {}
    for s in settings:
        hr, vr = s['height_range'], s['vis_range']
        gt_f, dt_f = [], []
        for g, d in zip(gts, dts):
            rows = []
            ign_col = g.get('ignore')
            for j, lbl in enumerate(g['labels']):
                if lbl not in ('person', 'person?', 'people', 'ignore'):
                    continue
                x, y, w, h = [float(v) for v in g['bboxes'][j]]
                vx, vy, vw, vh = [float(v) for v in g['bboxes_vis'][j]]
                p = lbl == 'person' and hr[0] <= h < hr[1]
                if vx == 0 and vy == 0 and vw == 0 and vh == 0:
                    vf = math.inf
                else:
                    vf = vw * vh / (w * h) if w * h else math.inf
                p = p and vr[0] <= vf <= vr[1]
                p = p and x >= border[0] and x + w <= border[2]
                p = p and y >= border[1] and y + h <= border[3]
                if ign_col is not None and ign_col[j]:
                    p = False
                if p:
                    dd = h * ar - w
                    x, w = x - dd / 2, w + dd
                rows.append([x, y, w, h, 0. if p else 1.])
            gt_f.append(np.array(rows).reshape(-1, 5))
            drows = []
            for x, y, w, h, sc in np.asarray(d, dtype=np.float64).reshape(-1, 5).tolist():
                if resize_dets:
                    dd = h * ar - w
                    x, w = x - dd / 2, w + dd
                if h >= hr[0] * (1 / 1.25) and h < hr[1] * 1.25:
                    drows.append([x, y, w, h, sc])
            dt_f.append(np.array(drows).reshape(-1, 5))
        mr2, _ = log_average_miss_rate_loop(gt_f, dt_f, iou_thr=s['iou_thr'], log_floor=log_floor)
        mr4, _ = log_average_miss_rate_loop(gt_f, dt_f, fppi_range=(-4, 0), iou_thr=s['iou_thr'],
                                            log_floor=log_floor)
        out[s['name']] = (mr2, mr4)
    return out
