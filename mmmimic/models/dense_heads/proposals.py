"""An RPN's proposals computed from fewer candidates, exactly (the mimic RoIs, test-time RPNs).

An RPN's predict step keeps the ``nms_pre`` best-scored anchors of each level, decodes them,
runs NMS (per level) and keeps the ``max_per_img`` best survivors. Greedy hard NMS visits boxes
in score order and a box can only be suppressed by a better-scored one, so the survivors among
the best ``k`` candidates of a level are exactly the survivors of the full list that score above
the ``(k + 1)``-th candidate. Hence: run the predict step on the best ``candidates`` anchors per
level first; if that gives ``max_per_img`` proposals and the last one scores strictly above
every truncated level's first left-out candidate, the result *is* the full predict step's (same
boxes, same scores, same order). Otherwise that image tries the next rung of the candidate ladder
(default ``(500, 1000)``: 500 proves itself on nearly every image of a small map, 1000 on more of
a large one), and after the last rung is recomputed with the full settings. The
cheap pass is exact by construction, so no proposal distribution changes; what it saves is the
decode and NMS of thousands of low-scored candidates (measured in
docs/advanced_guides/distiller.md, "Speed").
Used by the distiller for the mimic proposals and by :class:`FastExactRPNHead` for every predict
step of an RPN (test time, a two-stage detector's training proposals).

Only plain hard NMS (``nms=dict(type='nms', ...)``) has the prefix property; soft-NMS re-scores
boxes, so other NMS types always take the full path. Exactly equal scores among the boxes that
can reach the result (a trained RPN's sigmoid saturates to 1.0 in float32) also send the image
to the full step: NMS visits tied boxes in an order that depends on the list they sit in (the
sorts are not stable), so the cheap pass could keep the other one of two tied, overlapping boxes
(seen on 1-2 of 160 real frames before this check).

The cheap pass relies on ``RPNHead``'s predict step. Other mmdet dense heads used as an RPN
(``FCOSHead``, ``GARPNHead``, ...) give their proposals through :func:`dense_head_proposals`:
their own ``predict_by_feat`` on all their outputs, as mmdet's ``BaseDenseHead.loss_and_predict``
(a two-stage detector's training step) takes them.
"""
import copy
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


def _level_scores(rpn_head, cls_score: Tensor) -> Tensor:
    """One image's scores of one level, flattened in the order mmdet's RPN predict step uses."""
    cls_score = cls_score.permute(1, 2, 0).reshape(-1, rpn_head.cls_out_channels)
    if rpn_head.use_sigmoid_cls:
        scores = cls_score.sigmoid()
    else:
        scores = cls_score.softmax(-1)[:, :-1]
    return scores.reshape(-1)


def candidate_ladder(candidates: Union[None, int, Sequence[int]],
                     what: str = 'proposal_candidates') -> Tuple[int, ...]:
    """``candidates`` as a tuple of strictly increasing positive counts (the cheap pass's rungs).

    ``None`` / ``0`` / ``()``: no cheap pass (an empty tuple). An integer is a one-rung ladder.

    Raises:
        ValueError: naming ``what``, for anything else (negative, unsorted, repeated, not int).
    """
    if candidates is None or (isinstance(candidates, int) and not isinstance(candidates, bool)
                              and candidates == 0):
        return ()
    rungs = (candidates, ) if isinstance(candidates, int) else candidates
    try:
        rungs = tuple(rungs)
    except TypeError:
        rungs = None
    if (rungs is None or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
                                 for k in rungs)
            or any(a >= b for a, b in zip(rungs, rungs[1:]))):
        raise ValueError(f'{what} must be None, 0, a positive integer or a strictly increasing '
                         f'sequence of them (e.g. (500, 1000)), got {candidates!r}')
    return rungs


def fast_path_applies(cfg: ConfigDict, candidates: Union[None, int, Sequence[int]]) -> bool:
    """Whether ``cfg`` (an RPN predict cfg) can take the exact fast path with ``candidates``
    (its first rung, for a ladder)."""
    rungs = candidate_ladder(candidates)
    if not rungs:
        return False
    nms = cfg.get('nms') or {}
    nms_pre = cfg.get('nms_pre', -1)
    return (nms.get('type', 'nms') == 'nms' and cfg.get('max_per_img', -1) > 0
            and (nms_pre <= 0 or rungs[0] < nms_pre))


def _proven(rpn_head, result: InstanceData, cls_scores: Sequence[Tensor], cfg: ConfigDict,
            candidates: int) -> bool:
    """Whether one image's cheap-pass ``result`` on ``candidates`` anchors per level is provably
    the full step's (``cls_scores``: that image's ``(C, H, W)`` score map per level)."""
    if len(result) < cfg.max_per_img:
        return False
    levels = [_level_scores(rpn_head, c.detach()) for c in cls_scores]
    last = result.scores[-1]
    # the best score left out of the cheap pass on each truncated level
    left_out = [scores.topk(candidates + 1).values[-1] for scores in levels
                if scores.numel() > candidates]
    if left_out and not bool(last > torch.stack(left_out).max()):
        return False
    # Equal scores among the candidates that can reach the result: NMS visits them in an order
    # that depends on the list they sit in (sorting is not stable), so which of two tied,
    # overlapping boxes survives may differ from the full step's choice
    contenders = torch.cat([scores[scores >= last] for scores in levels])
    return torch.unique(contenders).numel() == contenders.numel()


def rpn_proposals(rpn_head, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                  batch_img_metas: List[dict], cfg: ConfigDict,
                  candidates: Union[None, int, Sequence[int]] = None, rescale: bool = False,
                  predict: Optional[Callable[..., List[InstanceData]]] = None
                  ) -> List[InstanceData]:
    """``rpn_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=..., cfg=cfg,
    rescale=rescale)``, computed from the best ``candidates`` anchors per level where that is
    provably identical.

    Args:
        rpn_head: an mmdet ``RPNHead`` (or subclass with the same predict step).
        cls_scores, bbox_preds: the head's outputs, one ``(B, ...)`` tensor per level.
        batch_img_metas: the images' metas.
        cfg: the predict settings (``nms_pre``, ``max_per_img``, ``nms``, ``min_bbox_size``).
        candidates: anchors per level of the cheap pass, or a strictly increasing ladder of
            them (e.g. ``(500, 1000)``: the images the 500-candidate pass cannot prove try 1000,
            the rest take the full step); ``None``/``0``: always the full step.
        rescale: boxes in the original image's pixels (``scale_factor``), as mmdet's.
        predict: the full predict step (default: the head's ``full_predict_by_feat`` if it has
            one, else its ``predict_by_feat``), called with the keyword arguments above.

    Returns:
        one ``InstanceData`` per image, equal to the full predict step's.
    """
    if predict is None:
        predict = getattr(rpn_head, 'full_predict_by_feat', None) or rpn_head.predict_by_feat

    def run(images: List[int], run_cfg: ConfigDict) -> List[InstanceData]:
        if len(images) == len(batch_img_metas):
            cls, box, metas = cls_scores, bbox_preds, batch_img_metas
        else:
            cls, box = [c[images] for c in cls_scores], [b[images] for b in bbox_preds]
            metas = [batch_img_metas[i] for i in images]
        return predict(cls, box, batch_img_metas=metas, cfg=run_cfg, rescale=rescale)

    per_level = [c[0].numel() // rpn_head.cls_out_channels for c in cls_scores]
    rungs = candidate_ladder(candidates) if fast_path_applies(cfg, candidates) else ()
    nms_pre = cfg.get('nms_pre', -1)
    rungs = [k for k in rungs
             if k < max(per_level) and (nms_pre <= 0 or k < nms_pre)
             # fewer candidates than proposals wanted (e.g. a Faster R-CNN student's 2000
             # training proposals): the cheap pass could never prove itself
             and k * len(per_level) >= cfg.max_per_img]
    if not rungs:
        return run(list(range(len(batch_img_metas))), cfg)
    results: List[Optional[InstanceData]] = [None] * len(batch_img_metas)
    todo = list(range(len(batch_img_metas)))
    for k in rungs:
        fast_cfg = copy.deepcopy(cfg)
        fast_cfg.nms_pre = k
        left = []
        for i, result in zip(todo, run(todo, fast_cfg)):
            if _proven(rpn_head, result, [c[i] for c in cls_scores], cfg, k):
                results[i] = result
            else:
                left.append(i)
        todo = left
        if not todo:
            break
    if todo:
        for i, result in zip(todo, run(todo, cfg)):
            results[i] = result
    return results


def dense_head_proposals(head, outs: Sequence[Sequence[Tensor]], batch_img_metas: List[dict],
                         cfg: ConfigDict) -> List[InstanceData]:
    """A dense head's proposals exactly as mmdet's ``BaseDenseHead.loss_and_predict`` takes them:
    ``head.predict_by_feat(*outs, batch_img_metas=..., cfg=cfg)`` (no rescale).

    For heads whose outputs are not ``(cls_scores, bbox_preds)`` (``FCOSHead``: centerness as
    score factors; ``GARPNHead``: anchor shape and location predictions), so
    :func:`rpn_proposals` (``RPNHead``'s predict step) does not apply.

    Args:
        head: an mmdet ``BaseDenseHead`` that does not override ``loss_and_predict``.
        outs: the head's forward outputs, all of them, in order.
        batch_img_metas: the images' metas.
        cfg: the predict settings (e.g. a two-stage detector's ``train_cfg.rpn_proposal``).

    Returns:
        one ``InstanceData`` per image (``bboxes``, ``scores``, ``labels``).
    """
    return head.predict_by_feat(*outs, batch_img_metas=batch_img_metas, cfg=cfg)


def top_candidates_only(head, cls_scores: Sequence[Tensor],
                        cfg: ConfigDict) -> Optional[List[Tensor]]:
    """The classification logits with everything below each image's and level's ``nms_pre``-th
    best set to ``-inf``, where that does not change the predict step; ``None`` where it might.

    mmdet's one-stage predict step (``BaseDenseHead._predict_by_feat_single``, ``GFLHead``'s)
    keeps, per image and level, the ``nms_pre`` best (anchor, class) scores above ``score_thr``
    (``filter_scores_and_topk``: a mask, then a full sort of what passes). At ``score_thr=0``
    (the mimic RoIs of a fresh head, :func:`one_stage_detections`) every score passes, and sorting
    all ``H x W x anchors x classes`` of them dominates the step (80 classes: millions per image
    at 512x512). A logit of ``-inf`` scores exactly 0 and never passes ``score > score_thr >= 0``,
    while each level's ``nms_pre`` best keep their logits: the step returns the same boxes,
    scores and labels after sorting ``nms_pre`` scores per level instead of all of them; only
    the order among exactly equal scores, which torch's unstable sorts do not fix anyway, can
    differ. Scores are the sigmoid of the logits, so the ``nms_pre``-th best is a ``topk`` on
    the logits.

    ``None`` for heads that do not filter that way (softmax classifiers, another predict step, no
    ``nms_pre``, a negative ``score_thr``).
    """
    from mmdet.models.dense_heads import GFLHead
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    nms_pre = cfg.get('nms_pre', -1)
    single = type(head)._predict_by_feat_single
    if nms_pre is None or nms_pre <= 0 or cfg.get('score_thr', 0.0) < 0 or \
            not getattr(head, 'use_sigmoid_cls', False) or \
            single not in (BaseDenseHead._predict_by_feat_single,
                           GFLHead._predict_by_feat_single):
        return None
    return [level if level[0].numel() <= nms_pre else
            level.masked_fill(level < _kth_best(level, head.cls_out_channels, nms_pre),
                              float('-inf')) for level in cls_scores]


def _kth_best(level: Tensor, num_classes: int, k: int) -> Tensor:
    """The ``k``-th best logit of each image in ``level`` ``(B, A * C, H, W)``, ``(B, 1, 1, 1)``.

    The ``k`` best (anchor, class) pairs lie among the pairs of the ``k`` anchors of best
    maximum logit (an anchor outside them has ``k`` anchors, each with a pair above every pair
    of its own), so the ``topk`` runs on the maxima and then on those anchors' ``k x C`` pairs,
    not on all ``A x C x H x W``.
    """
    b, channels, h, w = level.shape
    anchors = channels // num_classes
    flat = level.reshape(b, anchors, num_classes, h * w)
    best = flat.amax(dim=2).flatten(1)  # (B, A * H * W), anchor-major as the pairs are
    top = best.topk(min(k, best.size(1)), dim=1).indices
    a, p = top // (h * w), top % (h * w)
    pair = ((a * num_classes).unsqueeze(-1) + torch.arange(num_classes, device=level.device)
            ) * (h * w) + p.unsqueeze(-1)
    values = level.flatten(1).gather(1, pair.flatten(1))
    return values.topk(k, dim=1).values[:, -1].view(b, 1, 1, 1)


def one_stage_detections(head, outs: Sequence[Sequence[Tensor]], batch_img_metas: List[dict],
                         cfg: ConfigDict) -> List[InstanceData]:
    """A one-stage head's post-NMS detections on its training step's outputs (the mimic RoIs of
    a one-stage student): ``head.predict_by_feat`` without rescale, under ``no_grad`` (the
    boxes only place the RoIs), on each level's best candidates only where that changes nothing
    (:func:`top_candidates_only`)."""
    with torch.no_grad():
        cls_scores = top_candidates_only(head, outs[0], cfg)
        if cls_scores is not None:
            outs = (cls_scores, *outs[1:])
        return head.predict_by_feat(*outs, batch_img_metas=batch_img_metas, cfg=cfg)
