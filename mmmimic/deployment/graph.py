"""The exportable inference graph of a detector: dense part, box decoding, NMS, RoI stage.

:class:`DeployableDetector` wraps a built mmdet detector (``RPN``, mmmimic's ``RFCN``, a
``TwoStageDetector`` with a ``StandardRoIHead`` on one feature level or on a pyramid such as
FPN, or a one-stage detector with RetinaNet's, ATSS's or FCOS's head) and computes, for one
image, what ``detector.predict(..., rescale=True)`` computes, with tensor operations only, so
that ``torch.onnx.export`` traces one graph from the normalised image to the final detections:

* anchors, box decoding (``DeltaXYWHBBoxCoder``), clipping to ``img_shape``, the RPN's
  per-level ``nms_pre`` top-k, ``min_bbox_size`` filter, NMS batched by level and
  ``max_per_img``;
* R-FCN: position-sensitive RoI pooling as a gather from a summed-area table (``CumSum``,
  ``Gather``; no custom op), average voting;
* Faster R-CNN: ``RoIAlign`` exported as ONNX ``RoiAlign`` (opset 16 ``half_pixel``), on a
  pyramid each RoI on its ``finest_scale`` level (:func:`~.ops.extract_roi_feats`);
* the RoI stage's softmax, decoding, rescaling, score threshold and class-wise NMS;
* one-stage detectors: the dense head's own post-processing (:mod:`.dense`);
* cross-scale students: the input resize (bilinear, ``align_corners=False``) to the student's
  scale, so callers pass the full-size frame.

NMS is ONNX ``NonMaxSuppression`` in the graph (in eager PyTorch the same module calls mmcv's
``nms``), so the runtime needs nothing but onnxruntime. Every step mirrors the mmdet 3.3 code it
replaces (``RPNHead._predict_by_feat_single``/``_bbox_post_process``, ``SingleRoIExtractor``,
``delta2bbox``, ``batched_nms``, ``BBoxHead._predict_by_feat_single``, ``multiclass_nms``,
``BaseDenseHead._predict_by_feat_single``); the deployment tests check the exported graph
against ``detector.predict``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import RoIAlign
from torch import Tensor

from .dense import DENSE_HEADS, check_dense_route, dense_detections
from .fused import FusedDeconvConv, fusable_deconv_rpn  # noqa: F401
from .ops import (NoOnnxRouteError, batched_nms_indices, decode_deltas,  # noqa: F401
                  extract_roi_feats, nms_indices, ps_roi_pool_gather, rpn_head_of)

#: Detector classes (by name) with an ONNX route, for messages.
SUPPORTED_MODELS = ('RPN (RPNHead, one level or FPN)', 'RFCN (RFCNRoIHead)',
                    'FasterRCNN / TwoStageDetector (StandardRoIHead, RoIAlign on one level or '
                    'on FPN levels)',
                    f'RetinaNet / FCOS / ATSS / SingleStageDetector ({", ".join(DENSE_HEADS)})')


def check_onnx_route(detector: nn.Module) -> str:
    """The kind of export route of ``detector``: ``'rpn'``, ``'rfcn'``, ``'faster_rcnn'`` or
    ``'one_stage'``.

    Raises:
        NoOnnxRouteError: the detector, its RPN head, box coder, RoI head or one-stage head has
            no route (the message names the part and lists what is supported).
    """
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

    from mmmimic.models.dense_heads import FastExactRPNHead
    from mmmimic.models.roi_heads import RFCNBBoxHead, RFCNRoIHead
    name = type(detector).__name__
    supported = '; supported: ' + ', '.join(SUPPORTED_MODELS)
    rpn = rpn_head_of(detector)
    if rpn is None:
        check_dense_route(detector, supported)
        return 'one_stage'
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
        others = [layer for layer in layers
                  if not isinstance(layer, RoIAlign) or layer.pool_mode != 'avg']
        if roi_head.with_mask:
            problem = 'a mask head'
        elif roi_head.with_shared_head:
            problem = f'a shared head ({type(roi_head.shared_head).__name__})'
        elif type(extractor).__name__ != 'SingleRoIExtractor':
            problem = f'RoI extractor {type(extractor).__name__} (only SingleRoIExtractor)'
        elif not layers or others:
            problem = (f'RoI layer {type(others[0]).__name__ if others else None} (only '
                       'RoIAlign, avg mode)')
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
        self.rpn_head = rpn_head_of(detector)
        self.fused_neck = None
        if self.kind == 'one_stage':  # check_dense_route checked the head's test_cfg
            self.rpn_cfg = self.rcnn_cfg = None
            return
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
        # SingleRoIExtractor on x[:num_inputs]: one level, or a pyramid (finest_scale rule)
        return bbox_head(extract_roi_feats(self.detector.roi_head.bbox_roi_extractor, feats,
                                           rois))

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
        if self.kind == 'one_stage':
            return dense_detections(self.detector.bbox_head, feats, img_shape, scale_factor,
                                    self.cap_nms)
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
