"""Tiny versions of mmdet's own detector configs, and detections compared up to near ties.

:func:`write_mmdet_tiny` writes a config that inherits one of mmdet's configs through
``mmdet::`` (FPN Faster R-CNN, FPN RPN, RetinaNet, ATSS, FCOS, GFL, Mask R-CNN) and shrinks its
trunk to a ResNet-18 with 16 base channels and a 32-channel FPN, 3 classes: the models of the
deployment tests and of ``benchmarks/onnx_mmdet_equivalence.py``. With ``tiny_coco=True`` the
config reads the tiny generated COCO data (one class) and runs mmengine's test loop, for
``tools/test.py``.
"""
import os.path as osp
from typing import Tuple

import torch

from .config import CONFIG_ROOT

_TRUNK = ('backbone=dict(depth=18, base_channels=16, init_cfg=None, norm_eval=False), '
          'neck=dict(in_channels=[16, 32, 64, 128], out_channels=32)')
#: GroupNorm heads: 8 groups of 4 channels (32 groups of 1 channel fail on a 1x1 map)
_GN = "norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)"
_DENSE = 'num_classes={n}, in_channels=32, feat_channels=32, stacked_convs=2'
_RCNN = ('rpn_head=dict(in_channels=32, feat_channels=32), roi_head=dict(bbox_roi_extractor='
         'dict(out_channels=32), bbox_head=dict(in_channels=32, fc_out_channels=64, '
         'num_classes={n}){mask})')
#: kind -> (mmdet config, the model's head overrides; ``{n}``: the number of classes)
MMDET_TINY = {
    'fpn_faster_rcnn': ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                        _RCNN.format(n='{n}', mask='')),
    'fpn_rpn': ('rpn/rpn_r50_fpn_1x_coco.py', 'rpn_head=dict(in_channels=32, feat_channels=32)'),
    'retinanet': ('retinanet/retinanet_r50_fpn_1x_coco.py', f'bbox_head=dict({_DENSE})'),
    'atss': ('atss/atss_r50_fpn_1x_coco.py', f'bbox_head=dict({_DENSE}, {_GN})'),
    'fcos': ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', f'bbox_head=dict({_DENSE}, {_GN})'),
    'gfl': ('gfl/gfl_r50_fpn_1x_coco.py', f'bbox_head=dict({_DENSE})'),
    'mask_rcnn': ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', _RCNN.format(
        n='{n}', mask=', mask_roi_extractor=dict(out_channels=32), mask_head=dict('
        'in_channels=32, conv_out_channels=32, num_classes={n})')),
}
#: the model base configs of the kinds, for configs that read the tiny COCO data
_MODEL_BASES = {'fpn_faster_rcnn': 'faster-rcnn_r50_fpn.py', 'retinanet': 'retinanet_r50_fpn.py'}


def write_mmdet_tiny(kind: str, folder: str, tiny_coco: bool = False) -> str:
    """Write the tiny version of mmdet's config of ``kind`` (:data:`MMDET_TINY`) into
    ``folder`` and return its path.

    Args:
        kind: a key of :data:`MMDET_TINY`.
        folder: where the config is written (``<kind>_tiny.py``).
        tiny_coco: inherit mmdet's model base config only (``_MODEL_BASES``), with the tiny
            COCO data (``data/tiny_coco/``, one class) and mmengine's loops instead of COCO;
            3 classes otherwise.
    """
    base, heads = MMDET_TINY[kind]
    if tiny_coco:
        if kind not in _MODEL_BASES:
            raise KeyError(f'no tiny-COCO config for {kind!r} (only {sorted(_MODEL_BASES)})')
        bases = [f'mmdet::_base_/models/{_MODEL_BASES[kind]}',
                 osp.join(CONFIG_ROOT, '_base_', 'datasets', 'tiny_coco.py'),
                 osp.join(CONFIG_ROOT, '_base_', 'default_runtime.py')]
        extra = ("train_cfg = dict(type='IterBasedTrainLoop', max_iters=8, val_interval=8)\n"
                 "val_cfg = dict(type='ValLoop')\ntest_cfg = dict(type='TestLoop')\n"
                 "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))\n")
    else:
        bases, extra = [f'mmdet::{base}'], ''
    path = osp.join(folder, f'{kind}{"_tiny-coco" if tiny_coco else ""}_tiny.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {bases!r}\nmodel = dict({_TRUNK}, '
                f'{heads.format(n=1 if tiny_coco else 3)})\n{extra}')
    return path


def match_detections(onnx_pred, torch_pred, atol: float = 1e-3,
                     score_atol: float = 1e-4) -> Tuple[float, float]:
    """Assert that two ``pred_instances`` (``InstanceData``, or dicts as ``--out`` dumps them)
    hold the same detections up to the order of near-tied scores: the same count, and each of
    ``onnx_pred`` paired with a distinct one of ``torch_pred`` of the same label, box within
    ``atol`` px, score within ``score_atol`` (where two scores differ by float32 noise,
    onnxruntime may rank them the other way).

    Returns:
        the largest box and score differences of the pairs.
    """
    (boxes_a, scores_a, labels_a), (boxes_b, scores_b, labels_b) = (
        [torch.as_tensor(p[k] if isinstance(p, dict) else getattr(p, k))
         for k in ('bboxes', 'scores', 'labels')] for p in (onnx_pred, torch_pred))
    assert len(boxes_a) == len(boxes_b), (len(boxes_a), len(boxes_b))
    assert len(boxes_b) > 0, 'no detections: the comparison would be empty'
    diff = (boxes_a[:, None] - boxes_b[None]).abs().amax(-1)
    diff[labels_a.long()[:, None] != labels_b.long()[None]] = float('inf')
    used = torch.zeros(len(boxes_b), dtype=torch.bool)
    box_diff = score_diff = 0.0
    for i in range(len(boxes_a)):
        row = diff[i].masked_fill(used, float('inf'))
        j = int(row.argmin())
        assert row[j] < atol, (f'detection {i} {boxes_a[i].tolist()} has no match within '
                               f'{atol} px (nearest {row[j].item():.3g} px)')
        used[j] = True
        box_diff = max(box_diff, row[j].item())
        score_diff = max(score_diff, abs(scores_a[i] - scores_b[j]).item())
    assert score_diff < score_atol, score_diff
    return box_diff, score_diff
