"""The exportable inference graph of a detector: dense part, box decoding, NMS, RoI stage.

:class:`DeployableDetector` wraps a built mmdet detector (``RPN``, mmmimic's ``RFCN``, or a
``TwoStageDetector`` with a single-level ``StandardRoIHead``) and computes, for one image, what
``detector.predict(..., rescale=True)`` computes, with tensor operations only, so that
``torch.onnx.export`` traces one graph from the normalised image to the final detections:

* anchors, box decoding (``DeltaXYWHBBoxCoder``), clipping to ``img_shape``, the RPN's
  ``nms_pre`` top-k, ``min_bbox_size`` filter, per-level batched NMS and ``max_per_img``;
* R-FCN: position-sensitive RoI pooling as a gather from a summed-area table (``CumSum``,
  ``Gather``; no custom op), average voting;
* Faster R-CNN: ``RoIAlign`` exported as ONNX ``RoiAlign`` (opset 16 ``half_pixel``);
* the RoI stage's softmax, decoding, rescaling, score threshold and class-wise NMS;
* cross-scale students: the input resize (bilinear, ``align_corners=False``) to the student's
  scale, so callers pass the full-size frame.

NMS is ONNX ``NonMaxSuppression`` in the graph (in eager PyTorch the same module calls mmcv's
``nms``), so the runtime needs nothing but onnxruntime. Every step mirrors the mmdet 3.3 code it
replaces (``RPNHead._predict_by_feat_single``/``_bbox_post_process``, ``delta2bbox``,
``batched_nms``, ``BBoxHead._predict_by_feat_single``, ``multiclass_nms``); the deployment tests
check the exported graph against ``detector.predict``.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import RoIAlign
from mmcv.ops import nms as mmcv_nms
from mmcv.ops import roi_align as mmcv_roi_align
from torch import Tensor

#: Detector classes (by name) with an ONNX route, for messages.
SUPPORTED_MODELS = ('RPN (RPNHead)', 'RFCN (RFCNRoIHead)',
                    'FasterRCNN / TwoStageDetector (StandardRoIHead, single-level RoIAlign)')


class NoOnnxRouteError(NotImplementedError):
    """The model (or one of its parts) has no ONNX export route."""


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
    return bboxes.reshape(num_bboxes, -1)


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


def _rpn_head_of(detector: nn.Module) -> nn.Module:
    head = getattr(detector, 'rpn_head', None)
    if head is None and type(detector).__name__ == 'RPN':
        head = detector.bbox_head
    return head


def check_onnx_route(detector: nn.Module) -> str:
    """The kind of export route of ``detector``: ``'rpn'``, ``'rfcn'`` or ``'faster_rcnn'``.

    Raises:
        NoOnnxRouteError: the detector, its RPN head, box coder or RoI head has no route (the
            message names the part and lists what is supported).
    """
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

    from mmmimic.models.dense_heads import FastExactRPNHead
    from mmmimic.models.roi_heads import RFCNBBoxHead, RFCNRoIHead
    name = type(detector).__name__
    supported = '; supported: ' + ', '.join(SUPPORTED_MODELS)
    rpn = _rpn_head_of(detector)
    if rpn is None:
        raise NoOnnxRouteError(f'{name} has no ONNX route: mmmimic exports detectors with an '
                               f'RPN{supported}')
    # FastExactRPNHead: RPNHead's layers and outputs (its cheap pass is a runtime shortcut the
    # graph does not need: the exported NMS is capped at max_per_img)
    if type(rpn) not in (RPNHead, FastExactRPNHead):
        raise NoOnnxRouteError(f'{name}: RPN head {type(rpn).__name__} has no ONNX route '
                               f'(only mmdet RPNHead or FastExactRPNHead){supported}')
    coders = [rpn.bbox_coder]
    roi_head = getattr(detector, 'roi_head', None)
    if roi_head is None:
        kind = 'rpn'
    elif isinstance(roi_head, RFCNRoIHead) and isinstance(roi_head.bbox_head, RFCNBBoxHead):
        kind = 'rfcn'
    elif type(roi_head) is StandardRoIHead:
        extractor = roi_head.bbox_roi_extractor
        layers = getattr(extractor, 'roi_layers', [])
        problem = None
        if roi_head.with_mask:
            problem = 'a mask head'
        elif type(extractor).__name__ != 'SingleRoIExtractor':
            problem = f'RoI extractor {type(extractor).__name__}'
        elif len(layers) != 1:
            problem = f'a multi-level RoI extractor ({len(layers)} feature levels, e.g. FPN)'
        elif not isinstance(layers[0], RoIAlign) or layers[0].pool_mode != 'avg':
            problem = f'RoI layer {type(layers[0]).__name__} (only RoIAlign, avg mode)'
        if problem is not None:
            raise NoOnnxRouteError(f'{name}: StandardRoIHead with {problem} has no ONNX route'
                                   f'{supported}')
        kind = 'faster_rcnn'
    else:
        raise NoOnnxRouteError(f'{name}: RoI head {type(roi_head).__name__} has no ONNX route'
                               f'{supported}')
    if kind != 'rpn':
        coders.append(roi_head.bbox_head.bbox_coder)
        if roi_head.bbox_head.custom_cls_channels:
            raise NoOnnxRouteError(f'{name}: custom classification activations have no ONNX '
                                   'route (softmax only)')
    for coder in coders:
        if type(coder) is not DeltaXYWHBBoxCoder or coder.add_ctr_clamp:
            raise NoOnnxRouteError(f'{name}: box coder {type(coder).__name__} has no ONNX route '
                                   '(only DeltaXYWHBBoxCoder without add_ctr_clamp)')
    return kind


class FusedDeconvConv(nn.Module):
    """``conv3x3(deconv(x))`` (x2 ``Deconv2x`` then a 3x3, padding 1 conv, no activation
    between) as one 3x3 convolution on the small map plus a pixel shuffle.

    Both layers are linear, so their composition is a transposed convolution of ``x`` (kernel
    6, stride 2, padding 2); each of its four output phases is a 3x3 convolution of ``x``,
    computed as one convolution to ``4 x out`` channels and interleaved by ``pixel_shuffle``
    (ONNX ``DepthToSpace``). The composite kernel costs what the 3x3 conv alone costs, so the
    deconv's own multiply-adds are saved (a third of the cross-scale student's RPN at 264
    channels). Exactness at the borders: the 3x3 conv zero-pads the deconv map, while the
    composite would read the deconv's values one pixel outside it; those (one row or column
    per side, computed from the first/last input row or column) are subtracted. The deconv
    bias, inside the map only, is a constant map through the conv's taps (``bias_map``).
    Weights are combined in float64; the result equals the two layers up to float32 rounding.

    Args:
        deconv: the ``ConvTranspose2d`` (kernel 4, stride 2, padding 1).
        conv: the ``Conv2d`` (kernel 3, stride 1, padding 1) reading its output.
    """

    def __init__(self, deconv: nn.ConvTranspose2d, conv: nn.Conv2d) -> None:
        super().__init__()
        wd = deconv.weight.detach().double()  # (in, mid, 4, 4)
        wr = conv.weight.detach().double()  # (out, mid, 3, 3)
        n_in, n_out = wd.shape[0], wr.shape[0]
        composite = wd.new_zeros(n_in, n_out, 6, 6)
        for ky in range(4):
            for kx in range(4):
                for jy in range(3):
                    for jx in range(3):
                        composite[:, :, ky - jy + 2, kx - jx + 2] += \
                            wd[:, :, ky, kx] @ wr[:, :, jy, jx].t()
        # phase (a, b), tap (ty, tx) of a padding-1 conv: kernel index (a + 4 - 2ty, b + 4 - 2tx)
        phases = wd.new_zeros(n_out, 2, 2, n_in, 3, 3)
        for a in range(2):
            for b in range(2):
                for ty in range(3):
                    for tx in range(3):
                        phases[:, a, b, :, ty, tx] = \
                            composite[:, :, a + 4 - 2 * ty, b + 4 - 2 * tx].t()
        self.register_buffer('weight', phases.reshape(n_out * 4, n_in, 3, 3).float())
        bias_d = deconv.bias.detach().double() if deconv.bias is not None else \
            wd.new_zeros(wd.shape[1])
        # the deconv bias through each tap of the conv: a 1-channel conv of the inside mask
        self.register_buffer('bias_taps',
                             torch.einsum('fmyx,m->fyx', wr, bias_d)[:, None].float())
        bias_r = conv.bias.detach() if conv.bias is not None else wr.new_zeros(n_out).float()
        self.register_buffer('bias', bias_r.float().view(1, -1, 1, 1))
        self.register_buffer('deconv_weight', deconv.weight.detach().clone())
        self.register_buffer('conv_weight', conv.weight.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        """``conv(deconv(x))`` for ``x`` (B, in, H, W): (B, out, 2H, 2W)."""
        wd, wr = self.deconv_weight, self.conv_weight
        out = F.pixel_shuffle(F.conv2d(x, self.weight, padding=1), 2)
        inside = torch.ones_like(out[:1, :1])
        out = out + F.conv2d(inside, self.bias_taps, padding=1) + self.bias
        # the deconv's values one pixel outside its map, which the composite read and the
        # zero-padded conv does not: rows (corners included), then columns (inner rows)
        top = F.conv_transpose2d(x[:, :, :1], wd[:, :, :1], stride=(1, 2))
        bottom = F.conv_transpose2d(x[:, :, -1:], wd[:, :, 3:], stride=(1, 2))
        left = F.conv_transpose2d(x[..., :1], wd[..., :1], stride=(2, 1), padding=(1, 0))
        right = F.conv_transpose2d(x[..., -1:], wd[..., 3:], stride=(2, 1), padding=(1, 0))
        out = torch.cat([out[:, :, :1] - F.conv2d(top, wr[:, :, :1]), out[:, :, 1:-1],
                         out[:, :, -1:] - F.conv2d(bottom, wr[:, :, 2:])], dim=2)
        return torch.cat([out[..., :1] - F.conv2d(left, wr[..., :1], padding=(1, 0)),
                          out[..., 1:-1],
                          out[..., -1:] - F.conv2d(right, wr[..., 2:], padding=(1, 0))], dim=3)


def fusable_deconv_rpn(detector: nn.Module) -> bool:
    """Whether ``detector`` is an RPN whose neck is one ``Deconv2xNeck`` (no activation) read
    by a single-conv ``RPNHead``: then :class:`FusedDeconvConv` replaces the two layers."""
    from mmmimic.models.necks import Deconv2xNeck
    neck, head = getattr(detector, 'neck', None), _rpn_head_of(detector)
    if not isinstance(neck, Deconv2xNeck) or neck.act is not None:
        return False
    deconv, conv = neck.deconv, getattr(head, 'rpn_conv', None)
    return (getattr(detector, 'roi_head', None) is None and type(conv) is nn.Conv2d and
            tuple(deconv.kernel_size) == (4, 4) and tuple(deconv.stride) == (2, 2) and
            tuple(deconv.padding) == (1, 1) and tuple(deconv.output_padding) == (0, 0) and
            tuple(deconv.dilation) == (1, 1) and deconv.groups == 1 and
            tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1) and
            tuple(conv.padding) == (1, 1) and tuple(conv.dilation) == (1, 1) and
            conv.groups == 1 and conv.padding_mode == 'zeros')


class DeployableDetector(nn.Module):
    """One image in, final detections out: the traced module behind every exported graph.

    Args:
        detector: a built mmdet detector in eval mode (see :func:`check_onnx_route`).
        input_scale: the cross-scale student's input scale (0.5: the graph resizes the frame to
            half size before the student; boxes come back in the caller's coordinates).
        cap_nms: stop each NMS after the ``max_per_img`` boxes that ``predict`` keeps (ONNX
            ``max_output_boxes_per_class``): the same detections, much less NMS work on the
            thousands of RPN candidates. False: the uncapped NMS followed by a slice (kept for
            speed comparisons, see benchmarks/onnx_cross_scale_profile.py).
        fuse_deconv: an RPN with a ``Deconv2xNeck`` (the cross-scale students) runs the
            deconv and the RPN's 3x3 conv as one :class:`FusedDeconvConv` (equal up to float32
            rounding, faster); False keeps the two layers.

    Forward inputs (batch 1): ``image`` (1, 3, H, W) normalised and padded as by the detector's
    data preprocessor; ``img_shape`` (2, ) float ``(h, w)`` of the unpadded image in ``image``;
    ``scale_factor`` (2, ) float ``(w_scale, h_scale)`` from the original frame to ``image``.
    Outputs: ``boxes`` (K, 4) in original-frame pixels, ``scores`` (K, ), ``labels`` (K, ) int64,
    exactly what ``detector.predict(..., rescale=True)`` returns in ``pred_instances``.
    """

    def __init__(self, detector: nn.Module, input_scale: float = 1.0,
                 cap_nms: bool = True,
                 fuse_deconv: bool = True) -> None:
        super().__init__()
        self.cap_nms = bool(cap_nms)
        self.kind = check_onnx_route(detector)
        self.detector = detector
        self.input_scale = float(input_scale)
        if not 0 < self.input_scale <= 1:
            raise ValueError(f'input_scale must be in (0, 1], got {input_scale}')
        self.rpn_head = _rpn_head_of(detector)
        self.fused_neck = None
        if fuse_deconv and fusable_deconv_rpn(detector):
            self.fused_neck = FusedDeconvConv(detector.neck.deconv, self.rpn_head.rpn_conv)
        # what the heads' own predict steps read (mmdet hands test_cfg.rpn / .rcnn to them)
        self.rpn_cfg = self.rpn_head.test_cfg
        self.rcnn_cfg = detector.roi_head.test_cfg if self.kind != 'rpn' else None
        if self.rpn_cfg is None or (self.kind != 'rpn' and self.rcnn_cfg is None):
            raise ValueError(f'{type(detector).__name__} has no test_cfg for its '
                             f'{"RPN" if self.rpn_cfg is None else "RoI head"}: the exported '
                             'graph needs the test-time NMS settings')

    # ------------------------------------------------------------------ stages
    def rpn_proposals(self, feats: Sequence[Tensor], img_shape: Tensor,
                      scale_factor: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """RPNHead.predict for one image: ``(boxes, scores)``; rescaled when ``scale_factor``."""
        head, cfg = self.rpn_head, self.rpn_cfg
        if self.fused_neck is None:
            cls_scores, bbox_preds = head(feats)
        else:  # feats: the backbone's maps; the fused layer is the neck + RPN conv
            x = F.relu(self.fused_neck(feats[-1]))
            cls_scores, bbox_preds = [head.rpn_cls(x)], [head.rpn_reg(x)]
        featmap_sizes = [c.shape[-2:] for c in cls_scores]
        priors = head.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device)
        nms_pre = cfg.get('nms_pre', -1)
        mlvl_deltas, mlvl_priors, mlvl_scores, level_ids = [], [], [], []
        for level, (cls_score, bbox_pred, prior) in enumerate(zip(cls_scores, bbox_preds,
                                                                  priors)):
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
            logits = cls_score[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
            scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[:, :-1]
            scores = scores.reshape(-1)
            if nms_pre > 0:
                # mmdet sorts and keeps the first nms_pre; a full sort + slice keeps the graph
                # valid for inputs with fewer anchors than nms_pre (dynamic export)
                scores, order = scores.sort(descending=True)
                scores, order = scores[:nms_pre], order[:nms_pre]
                deltas, prior = deltas[order], prior[order]
            mlvl_deltas.append(deltas)
            mlvl_priors.append(prior)
            mlvl_scores.append(scores)
            level_ids.append(torch.full_like(scores, level, dtype=torch.long))
        coder = head.bbox_coder
        boxes = decode_deltas(torch.cat(mlvl_priors), torch.cat(mlvl_deltas), coder.means,
                              coder.stds, img_shape if coder.clip_border else None)
        scores, level_ids = torch.cat(mlvl_scores), torch.cat(level_ids)
        if scale_factor is not None:
            boxes = boxes * (1 / scale_factor).repeat(2)
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            valid = ((boxes[:, 2] - boxes[:, 0]) > min_size) & (
                (boxes[:, 3] - boxes[:, 1]) > min_size)
            boxes, scores, level_ids = boxes[valid], scores[valid], level_ids[valid]
        # mmdet slices [:max_per_img] after NMS; the capped NMS stops there (same indices)
        cap = cfg.max_per_img if self.cap_nms else -1
        keep = batched_nms_indices(boxes, scores, level_ids, cfg.nms, cap)[:cfg.max_per_img]
        return boxes[keep], scores[keep]

    def roi_scores(self, feats: Sequence[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        """Classification logits and box deltas of the RoI head for ``rois`` (N, 5)."""
        bbox_head = self.detector.roi_head.bbox_head
        if self.kind == 'rfcn':
            cls_maps, reg_maps = bbox_head.forward_score_maps(feats)
            k, scale = bbox_head.roi_feat_size[0], 1.0 / bbox_head.featmap_stride
            cls_score = ps_roi_pool_gather(cls_maps, rois, k, scale).mean(dim=(2, 3))
            bbox_pred = ps_roi_pool_gather(reg_maps, rois, k, scale).mean(dim=(2, 3))
            return cls_score, bbox_pred
        extractor = self.detector.roi_head.bbox_roi_extractor
        layer = extractor.roi_layers[0]
        roi_feats = _RoIAlign.apply(feats[0], rois, tuple(layer.output_size),
                                    float(layer.spatial_scale), int(layer.sampling_ratio),
                                    bool(layer.aligned))
        return bbox_head(roi_feats)

    def rcnn_detections(self, rois: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                        img_shape: Tensor, scale_factor: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """BBoxHead.predict_by_feat + multiclass_nms for one image."""
        bbox_head, cfg = self.detector.roi_head.bbox_head, self.rcnn_cfg
        scores = F.softmax(cls_score, dim=-1)
        num_classes = 1 if bbox_head.reg_class_agnostic else bbox_head.num_classes
        roi = rois[:, 1:].repeat_interleave(num_classes, dim=0)
        coder = bbox_head.bbox_coder
        boxes = decode_deltas(roi, bbox_pred.reshape(-1, coder.encode_size), coder.means,
                              coder.stds, img_shape if coder.clip_border else None)
        boxes = (boxes * (1 / scale_factor).repeat(2)).reshape(rois.shape[0], -1)
        num_fg = scores.shape[1] - 1
        if boxes.shape[1] > 4:
            boxes = boxes.reshape(rois.shape[0], -1, 4)
        else:
            boxes = boxes[:, None].expand(rois.shape[0], num_fg, 4)
        fg_scores = scores[:, :-1]
        labels = torch.arange(num_fg, device=scores.device).view(1, -1).expand_as(fg_scores)
        boxes, fg_scores, labels = boxes.reshape(-1, 4), fg_scores.reshape(-1), labels.reshape(-1)
        valid = fg_scores > cfg.score_thr
        boxes, fg_scores, labels = boxes[valid], fg_scores[valid], labels[valid]
        keep = batched_nms_indices(boxes, fg_scores, labels, cfg.nms,
                                   cfg.max_per_img if self.cap_nms else -1)
        if cfg.max_per_img > 0:
            keep = keep[:cfg.max_per_img]
        return boxes[keep], fg_scores[keep], labels[keep]

    # ------------------------------------------------------------------ forward
    def forward(self, image: Tensor, img_shape: Tensor,
                scale_factor: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Detections of one image; see the class docstring."""
        if self.input_scale != 1.0:
            # = resize_batch's size-based resize when H * scale and W * scale are integers
            image = F.interpolate(image, scale_factor=self.input_scale, mode='bilinear',
                                  align_corners=False)
            img_shape = img_shape * self.input_scale
            scale_factor = scale_factor * self.input_scale
        if self.fused_neck is not None:
            feats = self.detector.backbone(image)
        else:
            feats = self.detector.extract_feat(image)
        if self.kind == 'rpn':
            boxes, scores = self.rpn_proposals(feats, img_shape, scale_factor)
            return boxes, scores, torch.zeros_like(scores, dtype=torch.long)
        proposals, _ = self.rpn_proposals(feats, img_shape, None)
        rois = torch.cat([proposals.new_zeros(proposals.shape[0], 1), proposals], dim=1)
        cls_score, bbox_pred = self.roi_scores(feats, rois)
        return self.rcnn_detections(rois, cls_score, bbox_pred, img_shape, scale_factor)


def output_names() -> List[str]:
    """Names of the exported graph's outputs."""
    return ['boxes', 'scores', 'labels']


def input_names() -> List[str]:
    """Names of the exported graph's inputs."""
    return ['image', 'img_shape', 'scale_factor']
