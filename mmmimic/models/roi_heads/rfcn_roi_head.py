"""RoI head of R-FCN: mmdet's StandardRoIHead with the box branch run on score maps."""
from typing import Tuple

from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType


@MODELS.register_module()
class RFCNRoIHead(StandardRoIHead):
    """R-FCN RoI head, usable after mmdet's RPN in a two-stage detector.

    Everything but the box forward is :class:`StandardRoIHead`: mmdet's assigner and sampler
    (``train_cfg.assigner``/``sampler``), ``bbox_head.loss_and_target`` and
    ``bbox_head.predict_by_feat`` (bbox coder, NMS from ``test_cfg``). There is no RoI feature
    extractor: the head pools its own position-sensitive score maps, so ``bbox_roi_extractor``
    must be left out; masks and shared heads are not supported.

    Args:
        bbox_head: config of :class:`RFCNBBoxHead`.
        train_cfg, test_cfg, init_cfg: as for :class:`StandardRoIHead`.
    """

    def __init__(self,
                 bbox_head: ConfigType,
                 bbox_roi_extractor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if bbox_roi_extractor is not None:
            raise ValueError('RFCNRoIHead pools position-sensitive score maps itself; '
                             f'bbox_roi_extractor must be None, got {bbox_roi_extractor}')
        super().__init__(
            bbox_roi_extractor=None,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg)

    def init_bbox_head(self, bbox_roi_extractor: OptConfigType, bbox_head: ConfigType) -> None:
        """Build the box head (no RoI extractor).

        Args:
            bbox_roi_extractor: must be None.
            bbox_head: config of :class:`RFCNBBoxHead`.
        """
        self.bbox_roi_extractor = None
        self.bbox_head = MODELS.build(bbox_head)

    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor) -> dict:
        """Box head forward on ``rois``.

        Args:
            x: one-level feature tuple.
            rois: (N, 5) ``[batch_index, x1, y1, x2, y2]``.

        Returns:
            dict: ``cls_score`` (N, C+1), ``bbox_pred`` (N, 4 or 4C), ``bbox_feats`` None.
        """
        cls_score, bbox_pred = self.bbox_head(x, rois)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=None)
