"""R-FCN detector (Dai et al., NIPS 2016)."""
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class RFCN(TwoStageDetector):
    """R-FCN: backbone + RPN + :class:`~mmmimic.models.roi_heads.RFCNRoIHead`.

    The training/inference steps are mmdet's :class:`TwoStageDetector`; only the RoI head
    differs (position-sensitive score maps instead of per-RoI fc layers).

    Args:
        backbone, rpn_head, roi_head, train_cfg, test_cfg, neck, data_preprocessor, init_cfg:
            as for :class:`TwoStageDetector`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            data_preprocessor=data_preprocessor)
