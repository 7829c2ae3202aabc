"""R-FCN and the Inception RPN / Faster R-CNN bases: one loss, backward and predict step each."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs

CONFIG_ROOT = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')


def _tiny_model(base: str, widen_factor: float = 0.125):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, base))
    model_cfg = cfg.model
    model_cfg.backbone.widen_factor = widen_factor
    in_channels = round(528 * widen_factor)
    model_cfg.rpn_head.in_channels = in_channels
    model_cfg.rpn_head.feat_channels = 16
    if model_cfg.type == 'RFCN':
        model_cfg.roi_head.bbox_head.in_channels = in_channels
        model_cfg.roi_head.bbox_head.feat_channels = 16
    elif model_cfg.type == 'FasterRCNN':
        model_cfg.roi_head.bbox_roi_extractor.out_channels = in_channels
        model_cfg.roi_head.bbox_head.in_channels = in_channels
        model_cfg.roi_head.bbox_head.fc_out_channels = 32
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _data(model, batch_size=2):
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size, image_shapes=[(3, 64, 96)] * batch_size, num_items=[2] *
                            batch_size, num_classes=2)
    for sample in packed['data_samples']:  # Caltech: one class, 'person'
        sample.gt_instances.labels.zero_()
    return model.data_preprocessor(packed, training=True)


def test_rfcn_loss_backward_predict():
    model = _tiny_model('rfcn_inception.py')
    assert type(model).__name__ == 'RFCN'
    data = _data(model)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'):
        assert key in losses, key
    total, _ = model.parse_losses(losses)
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.stem[0].conv.weight.grad is not None
    assert model.roi_head.bbox_head.rfcn_reg.weight.grad is not None

    model.eval()
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2 and isinstance(results[0], DetDataSample)
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and pred.scores.shape == pred.labels.shape
    assert len(pred) <= 100
    # tensor mode (used by FLOP counting) returns the raw RoI-head outputs
    with torch.no_grad():
        (cls_score, bbox_pred), = model(data['inputs'], data['data_samples'], mode='tensor')
    assert cls_score.shape[1] == 2 and bbox_pred.shape[1] == 4


@pytest.mark.parametrize('base', ['inception_rpn.py', 'faster-rcnn_inception.py'])
def test_rpn_and_faster_rcnn_inception_train_step(base):
    model = _tiny_model(base)
    data = _data(model, batch_size=1)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    total.backward()
    assert torch.isfinite(total)
