"""Recall of the top-N proposals of a region proposal network (the paper's Table 11)."""
from typing import Sequence

import numpy as np


def proposal_recall(gts: Sequence[np.ndarray],
                    proposals: Sequence[np.ndarray],
                    proposal_nums: Sequence[int] = (300, ),
                    iou_thrs: Sequence[float] = (0.5, 0.7)) -> np.ndarray:
    """Fraction of gt boxes covered by at least one of the top-N proposals with IoU >= thr.

    The "best overlap" recall of Hosang et al. and the Faster R-CNN paper (a proposal may cover
    several gts). mmdet's ``eval_recalls`` (one-to-one assignment) cannot be used: it stacks
    ragged per-image arrays, which numpy >= 1.24 rejects.

    Args:
        gts: per image (k, 4) xyxy gt boxes (ignored boxes already removed).
        proposals: per image (m, 5) xyxy + score (sorted here by descending score, stable) or
            (m, 4) already in rank order.
        proposal_nums: the N values.
        iou_thrs: IoU thresholds (``>=``).

    Returns:
        (len(proposal_nums), len(iou_thrs)) recalls; NaN when there is no gt at all.
    """
    from mmdet.evaluation.functional import bbox_overlaps  # lazy: the functional core is light

    if len(gts) != len(proposals):
        raise ValueError(f'gts has {len(gts)} images but proposals has {len(proposals)}')
    nums = [int(n) for n in proposal_nums]
    best = [[] for _ in nums]
    for i, (g, p) in enumerate(zip(gts, proposals)):
        g = np.asarray(g, dtype=np.float32).reshape(-1, 4)
        p = np.asarray(p, dtype=np.float32)
        if p.size == 0:
            p = p.reshape(0, 4)
        if p.ndim != 2 or p.shape[1] not in (4, 5):
            raise ValueError(f'proposals[{i}] must have shape (m, 4) or (m, 5), got {p.shape}')
        if p.shape[1] == 5:
            p = p[np.argsort(-p[:, 4], kind='stable')]
        if len(g) == 0:
            continue
        ious = bbox_overlaps(g, p[:max(nums), :4]) if len(p) else np.zeros((len(g), 0))
        for k, n in enumerate(nums):
            sub = ious[:, :n]
            best[k].append(sub.max(axis=1) if sub.shape[1] else np.zeros(len(g)))
    out = np.full((len(nums), len(iou_thrs)), np.nan)
    for k in range(len(nums)):
        if best[k]:
            b = np.concatenate(best[k])
            out[k] = [(b >= t).mean() for t in iou_thrs]
    return out
