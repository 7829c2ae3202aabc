"""Tiny one-stage detectors from mmdet's own configs (RetinaNet, FCOS, ATSS, GFL, RTMDet, YOLOX):
each family's model config, read from the config mmdet ships, with its trunk shrunk so that a
training step on a 128x128 batch takes a fraction of a second on a CPU, and no pretrained
weights named (nothing is downloaded)."""
import copy
import os.path as osp

from mmengine.config import Config, ConfigDict

#: the mmdet config each family is read from (``mmdet/.mim/configs/...``)
MMDET_ONE_STAGE = {
    'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
    'gfl': 'gfl/gfl_r50_fpn_1x_coco.py',
    'rtmdet': 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'yolox': 'yolox/yolox_tiny_8xb8-300e_coco.py',
}
#: the families whose trunk is mmdet's ResNet (shrunk to a ResNet-18 of 16 base channels)
RESNET_FAMILIES = ('retinanet', 'fcos', 'atss', 'gfl')


def mmdet_config_path(relpath: str) -> str:
    """Absolute path of a config that mmdet ships (``mmdet::relpath``)."""
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', relpath)


def tiny_one_stage(family: str, channels: int = 32, num_classes: int = 1) -> ConfigDict:
    """The model config of mmdet's ``family`` detector with a tiny trunk.

    Args:
        family: a key of :data:`MMDET_ONE_STAGE`.
        channels: the neck's (and head's) channels: a teacher with more channels than its
            student makes every connector a real 1x1 conv.
        num_classes: the head's classes.

    Returns:
        the model config (its ``data_preprocessor`` is mmdet's, unchanged).
    """
    model = copy.deepcopy(Config.fromfile(mmdet_config_path(MMDET_ONE_STAGE[family])).model)
    head = model.bbox_head
    if family in RESNET_FAMILIES:
        model.backbone.update(depth=18, base_channels=16, init_cfg=None, norm_eval=False)
        model.neck.update(in_channels=[16, 32, 64, 128], out_channels=channels)
        head.update(in_channels=channels, feat_channels=channels, stacked_convs=1)
        if family != 'retinanet':  # their heads' default GroupNorm has 32 groups
            head.norm_cfg = dict(type='GN', num_groups=8, requires_grad=True)
    else:  # CSPNeXt (RTMDet) / CSPDarknet (YOLOX), widened by 1/8
        model.backbone.update(deepen_factor=0.167, widen_factor=0.125, init_cfg=None)
        model.neck.update(in_channels=[32, 64, 128], out_channels=channels,
                          num_csp_blocks=1)
        head.update(in_channels=channels, feat_channels=channels, stacked_convs=1)
        for part in (model.backbone, model.neck, head):  # no process group on a CPU test
            if part.get('norm_cfg', {}).get('type') == 'SyncBN':
                part.norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
    head.num_classes = num_classes
    return model
