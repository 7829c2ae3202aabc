"""Exportable building blocks of the inference graph: NMS, RoIAlign (one level or a pyramid),
box decoding and position-sensitive RoI pooling.

Each function computes what the mmdet/mmcv code it replaces computes (``batched_nms``,
``roi_align``, ``SingleRoIExtractor``, ``delta2bbox``, ``distance2bbox``, mmmimic's
``ps_roi_pool``) with tensor operations that ``torch.onnx.export`` traces into standard ONNX
operators (``NonMaxSuppression``, ``RoiAlign``, ``ScatterND``, ``CumSum``, ``Gather``); no
custom operator is needed at run time.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import nms as mmcv_nms
from mmcv.ops import roi_align as mmcv_roi_align
from torch import Tensor


class NoOnnxRouteError(NotImplementedError):
    """The model (or one of its parts) has no ONNX export route."""


def rpn_head_of(detector: nn.Module) -> nn.Module:
    """The RPN head of ``detector`` (``rpn_head``, or an ``RPN``'s ``bbox_head``), or None."""
    head = getattr(detector, 'rpn_head', None)
    if head is None and type(detector).__name__ == 'RPN':
        head = detector.bbox_head
    return head


class _NMSIndices(torch.autograd.Function):
    """Indices kept by NMS, sorted by decreasing score: mmcv ``nms`` in eager mode, ONNX
    ``NonMaxSuppression`` (one batch, one class, IoU > threshold suppresses) when exported.

    ``max_num > 0`` keeps the first ``max_num`` only; in ONNX it is the operator's
    ``max_output_boxes_per_class``, so that the greedy loop stops there (onnxruntime does): the
    same indices as the full NMS sliced, since greedy NMS never revises an earlier choice.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_threshold: float,
                max_num: int) -> Tensor:
        if boxes.shape[0] == 0:
            return boxes.new_zeros((0, ), dtype=torch.long)
        keep = mmcv_nms(boxes, scores, iou_threshold)[1]
        return keep[:max_num] if max_num > 0 else keep

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float, max_num: int):
        from torch.onnx import symbolic_helper as sym_help
        boxes = sym_help._unsqueeze_helper(g, boxes, [0])
        scores = sym_help._unsqueeze_helper(g, scores, [0, 1])
        max_out = g.op('Constant', value_t=torch.tensor([max_num if max_num > 0 else 2**31 - 1],
                                                        dtype=torch.long))
        iou = g.op('Constant', value_t=torch.tensor([iou_threshold], dtype=torch.float32))
        selected = g.op('NonMaxSuppression', boxes, scores, max_out, iou, center_point_box_i=0)
        column = g.op('Constant', value_t=torch.tensor(2, dtype=torch.long))
        return g.op('Gather', selected, column, axis_i=1)


class _RoIAlign(torch.autograd.Function):
    """mmcv ``roi_align`` (avg mode) in eager mode, ONNX ``RoiAlign`` (opset 16) when exported."""

    @staticmethod
    def forward(ctx, feat: Tensor, rois: Tensor, output_size: Tuple[int, int],
                spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
        return mmcv_roi_align(feat, rois, output_size, spatial_scale, sampling_ratio, 'avg',
                              aligned)

    @staticmethod
    def symbolic(g, feat, rois, output_size, spatial_scale, sampling_ratio, aligned):
        from torch.onnx import symbolic_helper as sym_help
        batch_index = g.op('Gather', rois, g.op('Constant', value_t=torch.tensor(0)), axis_i=1)
        batch_index = g.op('Cast', batch_index, to_i=sym_help.cast_pytorch_to_onnx['Long'])
        boxes = g.op('Gather', rois, g.op('Constant', value_t=torch.tensor([1, 2, 3, 4])),
                     axis_i=1)
        return g.op('RoiAlign', feat, boxes, batch_index,
                    coordinate_transformation_mode_s='half_pixel' if aligned else
                    'output_half_pixel', mode_s='avg', output_height_i=output_size[0],
                    output_width_i=output_size[1], sampling_ratio_i=max(0, sampling_ratio),
                    spatial_scale_f=spatial_scale)


def nms_indices(boxes: Tensor, scores: Tensor, iou_threshold: float,
                max_num: int = -1) -> Tensor:
    """Indices of the boxes NMS keeps, by decreasing score (exportable).

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N, ).
        iou_threshold: a box whose IoU with a kept, higher-scoring box exceeds this is dropped.
        max_num: keep at most this many (the first ones; the exported NMS stops there);
            <= 0: all.
    """
    return _NMSIndices.apply(boxes, scores, float(iou_threshold), int(max_num))


def batched_nms_indices(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: dict,
                        max_num: int = -1) -> Tensor:
    """mmcv ``batched_nms`` (class-aware via coordinate offsets) returning the kept indices.

    Args:
        boxes: (N, 4).
        scores: (N, ).
        idxs: (N, ) level or class index; boxes of different indices never suppress each other.
        nms_cfg: mmdet's ``nms`` config (``type='nms'``, ``iou_threshold``,
            optional ``class_agnostic``).
        max_num: keep the first ``max_num`` only (see :func:`nms_indices`); <= 0: all.
    """
    nms_cfg = dict(nms_cfg)
    nms_type = nms_cfg.pop('type', 'nms')
    if nms_type != 'nms':
        raise NoOnnxRouteError(f'nms type {nms_type!r} has no ONNX route (only type="nms")')
    iou_threshold = nms_cfg.pop('iou_threshold')
    class_agnostic = nms_cfg.pop('class_agnostic', False)
    nms_cfg.pop('split_thr', None)  # per-class loop of mmcv: same result as the offsets
    unsupported = {k: v for k, v in nms_cfg.items()
                   if (k, v) not in (('offset', 0), ('max_num', -1), ('score_threshold', 0))}
    if unsupported:
        raise NoOnnxRouteError(f'nms options {unsupported} have no ONNX route (supported: '
                               'type="nms", iou_threshold, class_agnostic, split_thr)')
    if class_agnostic:
        boxes_for_nms = boxes
    else:
        # boxes.max() as mmcv, with a 0 appended so that an empty input stays valid in ONNX.
        max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
        offsets = idxs.to(boxes) * (max_coordinate + 1)
        boxes_for_nms = boxes + offsets[:, None]
    return nms_indices(boxes_for_nms, scores, iou_threshold, max_num)


def decode_deltas(rois: Tensor, deltas: Tensor, means: Sequence[float], stds: Sequence[float],
                  img_shape: Optional[Tensor], wh_ratio_clip: float = 16 / 1000,
                  clip_border: bool = True) -> Tensor:
    """mmdet's ``delta2bbox`` with the clipping bounds as a tensor (exportable).

    Args:
        rois: (N, 4) reference boxes.
        deltas: (N, 4 * C) encoded offsets.
        means, stds: the coder's target normalisation.
        img_shape: (2, ) ``(h, w)`` to clip to, or None.
        wh_ratio_clip: as ``delta2bbox``.
        clip_border: clip to ``[0, w] x [0, h]``.

    Returns:
        (N, 4 * C) boxes.
    """
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    deltas = deltas.reshape(-1, 4)
    means = deltas.new_tensor(means).view(1, -1)
    stds = deltas.new_tensor(stds).view(1, -1)
    denorm = deltas * stds + means
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = abs(math.log(wh_ratio_clip))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if clip_border and img_shape is not None:
        upper = img_shape.flip(0).repeat(2).to(bboxes)  # (w, h, w, h)
        bboxes = torch.min(torch.clamp(bboxes, min=0), upper)
    return bboxes.reshape(num_bboxes, num_classes * 4)  # not -1: valid for 0 boxes too


def ps_roi_pool_gather(score_maps: Tensor, rois: Tensor, output_size: int,
                       spatial_scale: float) -> Tensor:
    """:func:`mmmimic.models.roi_heads.ps_roi_pool` as one 1-D gather (exportable).

    Same bins and the same float64 summed-area table; the four corner look-ups index the
    flattened table (``Gather`` on a vector) instead of advanced indexing on four axes.

    Args:
        score_maps: (B, C * k * k, H, W).
        rois: (N, 5) ``[batch_index, x1, y1, x2, y2]`` in input pixels.
        output_size: k.
        spatial_scale: 1 / stride.

    Returns:
        (N, C, k, k).
    """
    from mmmimic.models.roi_heads.ps_roi_pool import ps_roi_bin_edges
    _, channels, height, width = score_maps.shape
    k = output_size
    out_channels = channels // (k * k)
    integral = F.pad(score_maps.double().cumsum(2).cumsum(3), (1, 0, 1, 0))
    flat = integral.reshape(-1)
    rois = rois.double()
    y0, y1, x0, x1 = ps_roi_bin_edges(rois, k, spatial_scale, height, width)
    b = rois[:, 0].long().view(-1, 1, 1, 1)
    ch = torch.arange(channels, device=score_maps.device).view(1, out_channels, k, k)
    plane = (b * channels + ch) * ((height + 1) * (width + 1))
    y0, y1 = y0.view(-1, 1, k, 1) * (width + 1), y1.view(-1, 1, k, 1) * (width + 1)
    x0, x1 = x0.view(-1, 1, 1, k), x1.view(-1, 1, 1, k)
    bin_sum = (flat[plane + y1 + x1] - flat[plane + y0 + x1] - flat[plane + y1 + x0] +
               flat[plane + y0 + x0])
    area = ((y1 - y0) // (width + 1) * (x1 - x0)).double()
    pooled = torch.where(area > 0, bin_sum / area.clamp(min=1), torch.zeros_like(bin_sum))
    return pooled.to(score_maps.dtype)


def roi_align(feat: Tensor, rois: Tensor, layer: nn.Module) -> Tensor:
    """mmcv ``RoIAlign`` module ``layer`` (avg mode) on ``rois`` (N, 5) (exportable)."""
    return _RoIAlign.apply(feat, rois, tuple(layer.output_size), float(layer.spatial_scale),
                           int(layer.sampling_ratio), bool(layer.aligned))


def extract_roi_feats(extractor: nn.Module, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
    """mmdet ``SingleRoIExtractor.forward`` (no ``roi_scale_factor``), exportable.

    One level: ``RoIAlign`` on it. A pyramid (e.g. FPN): each RoI goes to the level of
    ``extractor.map_roi_levels`` (mmdet's own ``finest_scale`` rule,
    ``floor(log2(sqrt(area) / finest_scale + 1e-6))`` clamped to the levels), is pooled there
    with that level's ``RoIAlign`` (its own ``spatial_scale``), and the pooled features are
    scattered back to the RoIs' order (``ScatterND``). A level that gets no RoI pools an empty
    set, so one graph serves every input size.

    Args:
        extractor: the built ``SingleRoIExtractor`` (``roi_layers`` of mmcv ``RoIAlign``).
        feats: the feature maps; the first ``len(extractor.roi_layers)`` are read (mmdet hands
            it ``x[:num_inputs]``).
        rois: (N, 5) ``[batch_index, x1, y1, x2, y2]``.

    Returns:
        (N, out_channels, h, w).
    """
    layers = extractor.roi_layers
    if len(layers) == 1:
        return roi_align(feats[0], rois, layers[0])
    target = extractor.map_roi_levels(rois, len(layers))
    order, pooled = [], []
    for level, layer in enumerate(layers):
        inds = (target == level).nonzero().reshape(-1)
        order.append(inds)
        pooled.append(roi_align(feats[level], rois[inds], layer))
    out = rois.new_zeros((rois.shape[0], extractor.out_channels, *layers[0].output_size))
    return out.index_put((torch.cat(order), ), torch.cat(pooled))


def decode_distances(points: Tensor, distances: Tensor, img_shape: Optional[Tensor]) -> Tensor:
    """mmdet's ``distance2bbox`` (``DistancePointBBoxCoder``) with the clipping bounds as a
    tensor (exportable).

    Args:
        points: (N, 2) ``x, y``.
        distances: (N, 4) to the left, top, right and bottom sides.
        img_shape: (2, ) ``(h, w)`` to clip to, or None.

    Returns:
        (N, 4) boxes.
    """
    boxes = torch.cat([points - distances[:, :2], points + distances[:, 2:]], dim=1)
    if img_shape is not None:
        upper = img_shape.flip(0).repeat(2).to(boxes)  # (w, h, w, h)
        boxes = torch.min(torch.clamp(boxes, min=0), upper)
    return boxes
