"""R-FCN's box head: position-sensitive score maps, PS-RoI pooling and average voting."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor

from mmdet.models.roi_heads.bbox_heads import BBoxHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from .ps_roi_pool import ps_roi_pool


@MODELS.register_module()
class RFCNBBoxHead(BBoxHead):
    """Position-sensitive classification and box regression of R-FCN (Dai et al. 2016).

    On the whole feature map: an optional conv ``conv_new`` (``in_channels -> feat_channels``,
    ReLU), then a 1x1 conv to ``k*k*(C+1)`` class score maps and a 1x1 conv to ``k*k*4``
    (class-agnostic, default) or ``k*k*4*C`` box maps. Each RoI is pooled position-sensitively
    (:func:`ps_roi_pool`) into ``k x k`` bins and the bins are averaged (average voting), giving
    the ``(N, C+1)`` scores and ``(N, 4)``/``(N, 4C)`` deltas that mmdet's :class:`BBoxHead`
    losses, targets, bbox coder and test-time NMS consume unchanged (all inherited).

    Args:
        in_channels: channels of the backbone map (e.g. 528 * widen_factor for ``inception_4d``).
        feat_channels: channels of ``conv_new``; 0 or None puts the score convs directly on
            the backbone map.
        roi_feat_size: k, bins per side (7 in the paper).
        featmap_stride: stride of the feature map (16 for ``inception_4d``).
        num_classes: foreground classes C.
        reg_class_agnostic: one box per RoI (True, default) or one per class.
        conv_cfg, norm_cfg, act_cfg: of ``conv_new``.
        init_cfg: initialisation; default N(0, 0.01) for class maps, N(0, 0.001) for box maps.
        **kwargs: the remaining :class:`BBoxHead` arguments (``bbox_coder``, ``loss_cls``,
            ``loss_bbox``, ``reg_decoded_bbox``, ``predict_box_type``).
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: Optional[int] = 512,
                 roi_feat_size: int = 7,
                 featmap_stride: int = 16,
                 num_classes: int = 1,
                 reg_class_agnostic: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = [
                     dict(type='Normal', std=0.01, override=dict(name='rfcn_cls')),
                     dict(type='Normal', std=0.001, override=dict(name='rfcn_reg'))
                 ],
                 **kwargs) -> None:
        for key in ('with_avg_pool', 'with_cls', 'with_reg'):
            if key in kwargs:
                raise TypeError(f'RFCNBBoxHead does not take {key!r}: it always classifies and '
                                'regresses by average voting')
        # BBoxHead's fc predictors are replaced by the score-map convs below; built on a
        # 1-channel avg-pooled input so they cost nothing, then removed.
        super().__init__(
            with_avg_pool=True,
            roi_feat_size=roi_feat_size,
            in_channels=1,
            num_classes=num_classes,
            reg_class_agnostic=reg_class_agnostic,
            init_cfg=init_cfg,
            **kwargs)
        del self.fc_cls, self.fc_reg, self.avg_pool
        self.with_avg_pool = False
        if self.custom_cls_channels:
            raise ValueError('RFCNBBoxHead needs a softmax-style loss_cls with C+1 outputs')
        self.in_channels = in_channels
        self.feat_channels = feat_channels or None
        self.featmap_stride = featmap_stride
        k2 = self.roi_feat_area
        if self.feat_channels is not None:
            self.conv_new = ConvModule(
                in_channels, feat_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=act_cfg)
            map_channels = feat_channels
        else:
            self.conv_new = None
            map_channels = in_channels
        box_dim = self.bbox_coder.encode_size
        self.reg_channels = box_dim if reg_class_agnostic else box_dim * num_classes
        self.rfcn_cls = nn.Conv2d(map_channels, k2 * (num_classes + 1), 1)
        self.rfcn_reg = nn.Conv2d(map_channels, k2 * self.reg_channels, 1)

    def forward_score_maps(self, x: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Position-sensitive score maps of the whole image.

        Args:
            x: one-level feature tuple from the backbone/neck, ``x[0]`` (B, in_channels, H, W).

        Returns:
            tuple[Tensor]: class maps (B, k*k*(C+1), H, W) and box maps (B, k*k*reg, H, W).
        """
        if len(x) != 1:
            raise ValueError(f'RFCNBBoxHead expects a single feature level, got {len(x)}')
        feat = x[0]
        if feat.size(1) != self.in_channels:
            raise ValueError(f'RFCNBBoxHead.in_channels is {self.in_channels} but the feature '
                             f'map has {feat.size(1)} channels (shape {tuple(feat.shape)})')
        if self.conv_new is not None:
            feat = self.conv_new(feat)
        return self.rfcn_cls(feat), self.rfcn_reg(feat)

    def forward(self, x: Sequence[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        """Score maps, PS-RoI pooling and average voting.

        Args:
            x: one-level feature tuple, ``x[0]`` (B, in_channels, H, W).
            rois: (N, 5) ``[batch_index, x1, y1, x2, y2]`` in input pixels.

        Returns:
            tuple[Tensor]: ``cls_score`` (N, C+1) and ``bbox_pred`` (N, 4) or (N, 4C).
        """
        cls_maps, reg_maps = self.forward_score_maps(x)
        k, scale = self.roi_feat_size[0], 1.0 / self.featmap_stride
        cls_score = ps_roi_pool(cls_maps, rois, k, scale).mean(dim=(2, 3))
        bbox_pred = ps_roi_pool(reg_maps, rois, k, scale).mean(dim=(2, 3))
        return cls_score, bbox_pred
