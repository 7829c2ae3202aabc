"""The one-stage route of the exported graph: mmdet's dense heads without an RPN.

:func:`check_dense_route` accepts a ``SingleStageDetector`` (RetinaNet, FCOS, ATSS, ...) whose
head computes its detections with mmdet's generic ``BaseDenseHead._predict_by_feat_single``
(RetinaNet's ``RetinaHead``, ``AnchorHead``, ``ATSSHead``, ``FCOSHead``) and refuses any other
head, naming it. :func:`dense_detections` is that method for one image, with tensor operations
only:

* per level: sigmoid (or softmax) scores, the ``score_thr`` filter and the ``nms_pre`` top-k
  over the flattened ``(prior, class)`` scores (``filter_scores_and_topk``), the score factors
  (FCOS/ATSS centerness, sigmoid) of the kept priors;
* decoding (``DeltaXYWHBBoxCoder`` for anchors, ``DistancePointBBoxCoder`` for points) clipped
  to ``img_shape``, rescaling to the original frame, scores times score factors, the
  ``min_bbox_size`` filter, class-wise batched NMS and ``max_per_img``
  (``BaseDenseHead._bbox_post_process``).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .ops import NoOnnxRouteError, batched_nms_indices, decode_deltas, decode_distances

#: One-stage heads (mmdet classes, exactly) with an ONNX route, for messages.
DENSE_HEADS = ('RetinaHead', 'AnchorHead', 'ATSSHead', 'FCOSHead')


def _route_table() -> dict:
    """head class -> (prior generator class, box coder class) of the supported heads."""
    from mmdet.models.dense_heads import AnchorHead, ATSSHead, FCOSHead, RetinaHead
    from mmdet.models.task_modules.coders import (DeltaXYWHBBoxCoder,
                                                  DistancePointBBoxCoder)
    from mmdet.models.task_modules.prior_generators import AnchorGenerator, MlvlPointGenerator
    anchors = (AnchorGenerator, DeltaXYWHBBoxCoder)
    return {RetinaHead: anchors, AnchorHead: anchors, ATSSHead: anchors,
            FCOSHead: (MlvlPointGenerator, DistancePointBBoxCoder)}


def check_dense_route(detector: nn.Module, supported: str) -> None:
    """Refuse a one-stage ``detector`` without an ONNX route.

    Args:
        detector: a built detector with a ``bbox_head`` and no RPN.
        supported: the list of supported models, appended to messages.

    Raises:
        NoOnnxRouteError: the detector overrides ``predict``/``extract_feat``, its head is not
            one of :data:`DENSE_HEADS` (e.g. GFL's, YOLOX's, RTMDet's own post-processing), or
            its prior generator, box coder or classification activation is another.
    """
    from mmdet.models.detectors import SingleStageDetector
    name = type(detector).__name__
    head = getattr(detector, 'bbox_head', None)
    if not isinstance(detector, SingleStageDetector) or head is None or any(
            getattr(type(detector), m) is not getattr(SingleStageDetector, m)
            for m in ('predict', 'extract_feat')):
        raise NoOnnxRouteError(f'{name} has no ONNX route: mmmimic exports detectors with an '
                               f'RPN or a one-stage SingleStageDetector{supported}')
    table = _route_table()
    if type(head) not in table:
        raise NoOnnxRouteError(
            f'{name}: one-stage head {type(head).__name__} has no ONNX route (one-stage heads '
            f'with a route: {", ".join(DENSE_HEADS)}; heads with their own post-processing, '
            f'e.g. GFLHead, YOLOXHead, RTMDetHead, are not exported){supported}')
    priors_cls, coder_cls = table[type(head)]
    for part, obj, cls in (('prior generator', head.prior_generator, priors_cls),
                           ('box coder', head.bbox_coder, coder_cls)):
        if type(obj) is not cls or getattr(obj, 'add_ctr_clamp', False):
            raise NoOnnxRouteError(f'{name}: {type(head).__name__} with {part} '
                                   f'{type(obj).__name__} has no ONNX route (only '
                                   f'{cls.__name__}, without add_ctr_clamp)')
    if getattr(head.loss_cls, 'custom_cls_channels', False):
        raise NoOnnxRouteError(f'{name}: custom classification activations have no ONNX '
                               'route (sigmoid or softmax only)')
    if getattr(head, 'test_cfg', None) is None:
        raise ValueError(f'{name} has no test_cfg for its {type(head).__name__}: the exported '
                         'graph needs the test-time score threshold and NMS settings')


def _level_candidates(head: nn.Module, cls_score: Tensor, bbox_pred: Tensor,
                      score_factor: Optional[Tensor], priors: Tensor, score_thr: float,
                      nms_pre: int) -> Tuple[Tensor, ...]:
    """One level of ``_predict_by_feat_single``: ``(scores, labels, deltas, priors,
    score factors or None)`` of the kept ``(prior, class)`` pairs."""
    deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
    logits = cls_score[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
    scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[:, :-1]
    num_classes = scores.shape[1]
    # filter_scores_and_topk: the row-major (prior, class) pairs above score_thr, sorted,
    # sliced [:min(nms_pre, count)] (= [:nms_pre], also for mmdet's nms_pre <= 0 cases)
    scores = scores.reshape(-1)
    valid = (scores > score_thr).nonzero().reshape(-1)
    scores, order = scores[valid].sort(descending=True)
    scores, flat = scores[:nms_pre], valid[order[:nms_pre]]
    keep = torch.div(flat, num_classes, rounding_mode='floor')
    labels = flat - keep * num_classes
    factors = None
    if score_factor is not None:
        factors = score_factor[0].permute(1, 2, 0).reshape(-1).sigmoid()[keep]
    return scores, labels, deltas[keep], priors[keep], factors


def dense_detections(head: nn.Module, feats: Sequence[Tensor], img_shape: Tensor,
                     scale_factor: Tensor, cap_nms: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """``head.predict(feats, ..., rescale=True)`` for one image: ``(boxes, scores, labels)``.

    Args:
        head: a dense head accepted by :func:`check_dense_route`.
        feats: the neck's maps (batch 1).
        img_shape: (2, ) ``(h, w)`` of the unpadded input.
        scale_factor: (2, ) ``(w, h)`` scale from the original frame.
        cap_nms: stop the NMS after ``max_per_img`` boxes (same boxes, see
            :func:`~.ops.nms_indices`).
    """
    cfg = head.test_cfg
    outs = head(feats)
    cls_scores, bbox_preds = outs[0], outs[1]
    # BaseDenseHead.predict hands a third output (centerness) as score_factors
    score_factors = outs[2] if len(outs) > 2 else [None] * len(cls_scores)
    priors = head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], dtype=cls_scores[0].dtype,
        device=cls_scores[0].device)
    score_thr, nms_pre = cfg.get('score_thr', 0), cfg.get('nms_pre', -1)
    levels = [_level_candidates(head, *args, score_thr, nms_pre)
              for args in zip(cls_scores, bbox_preds, score_factors, priors)]
    scores, labels, deltas, level_priors, factors = (
        torch.cat([lv[i] for lv in levels]) if levels[0][i] is not None else None
        for i in range(5))
    coder = head.bbox_coder
    clip = img_shape if coder.clip_border else None
    if level_priors.shape[-1] == 2:  # points: DistancePointBBoxCoder
        boxes = decode_distances(level_priors, deltas, clip)
    else:
        boxes = decode_deltas(level_priors, deltas, coder.means, coder.stds, clip)
    boxes = boxes * (1 / scale_factor).repeat(2)
    if factors is not None:
        scores = scores * factors
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        valid = ((boxes[:, 2] - boxes[:, 0]) > min_size) & (
            (boxes[:, 3] - boxes[:, 1]) > min_size)
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
    keep = batched_nms_indices(boxes, scores, labels, cfg.nms,
                               cfg.max_per_img if cap_nms else -1)[:cfg.max_per_img]
    return boxes[keep], scores[keep], labels[keep]
