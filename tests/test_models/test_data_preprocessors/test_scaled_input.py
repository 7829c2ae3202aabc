"""ScaledInputDataPreprocessor: a plain detector sees exactly the cross-scale student's input."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmmimic  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData
from mmmimic.models.data_preprocessors import (ScaledInputDataPreprocessor, input_scale_of,
                                               plain_preprocessor)
from mmmimic.testing.distill import build_distiller

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')
DECONV_MIMIC_CFG = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'cross_scale',
                            'rpn_r18-w8-deconv_mimic_tiny.py')
DECONV_CFG = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'cross_scale',
                      'rpn_r18-w8-deconv_tiny.py')


def raw_batch(seed=0):
    """What the dataloader gives: uint8 images of different sizes, boxes in pixels."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in ((90, 120), (96, 128)):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
                                        img_path=f'img_{h}.jpg'))
        s.gt_instances = InstanceData(bboxes=HorizontalBoxes(torch.tensor([[10., 20., 40., 80.]])),
                                      labels=torch.tensor([0]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def scaled_detector():
    register_all_modules()
    cfg = Config.fromfile(DECONV_CFG).model
    dp = dict(cfg.data_preprocessor)
    dp.update(type='ScaledInputDataPreprocessor', input_scale=0.5)
    cfg.data_preprocessor = dp
    return MODELS.build(cfg)


def test_same_input_as_the_distillers_student(teacher_ckpt):
    distiller = build_distiller(teacher_ckpt, config=DECONV_MIMIC_CFG)
    seen = {}
    extract = distiller.student.extract_feat
    distiller.student.extract_feat = lambda x: (seen.setdefault('mimic', x), extract(x))[1]
    distiller.train()
    data = distiller.data_preprocessor(raw_batch(), True)
    distiller.loss(data['inputs'], data['data_samples'])

    detector = scaled_detector()
    assert detector.data_preprocessor.input_scale == 0.5
    out = detector.data_preprocessor(raw_batch(), True)
    assert out['inputs'].shape == (2, 3, 48, 64)
    assert torch.equal(out['inputs'], seen['mimic'])
    s = out['data_samples'][0]
    assert s.metainfo['scale_factor'] == (0.5, 0.5) and s.metainfo['img_shape'] == (45, 60)
    boxes = s.gt_instances.bboxes
    assert torch.equal(getattr(boxes, 'tensor', boxes), torch.tensor([[5., 10., 20., 40.]]))
    assert detector.loss(out['inputs'], out['data_samples'])['loss_rpn_cls'][0].item() > 0


def test_predictions_map_back_like_the_distiller(teacher_ckpt):
    """Same student weights: the plain detector with the preprocessor predicts the distiller's
    boxes, in original-image coordinates."""
    distiller = build_distiller(teacher_ckpt, config=DECONV_MIMIC_CFG).eval()
    detector = scaled_detector().eval()
    detector.load_state_dict(distiller.student.state_dict())
    with torch.no_grad():
        d = distiller.data_preprocessor(raw_batch(1), False)
        ref = distiller.predict(d['inputs'], d['data_samples'])
        p = detector.data_preprocessor(raw_batch(1), False)
        got = detector.predict(p['inputs'], p['data_samples'])
    for a, b in zip(ref, got):
        assert len(a.pred_instances) == len(b.pred_instances) > 0
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
    assert got[1].pred_instances.bboxes[:, 2].max() > 64  # original coordinates (128 wide)


def test_outside_training_gt_boxes_keep_the_pipelines_coordinates(teacher_ckpt):
    """Metrics that read the data samples' gt (proposal recall, VOC mAP) compare it with the
    predictions in original-image coordinates: the preprocessor must not halve it at test time
    (it did: the main job's scratch cross-scale students got recall@300 13% against 92% for the
    mimic students, whose distiller keeps the caller's samples)."""
    from mmmimic.evaluation.metrics import ProposalRecallMetric
    distiller = build_distiller(teacher_ckpt, config=DECONV_MIMIC_CFG).eval()
    detector = scaled_detector().eval()
    detector.load_state_dict(distiller.student.state_dict())
    recalls = []
    with torch.no_grad():
        for model in (distiller, detector):
            data = model.data_preprocessor(raw_batch(1), False)
            boxes = data['data_samples'][0].gt_instances.bboxes
            assert torch.equal(getattr(boxes, 'tensor', boxes),
                               torch.tensor([[10., 20., 40., 80.]]))
            metric = ProposalRecallMetric(proposal_nums=(300, ), iou_thrs=(0.3, ))
            preds = model.predict(data['inputs'], data['data_samples'])
            metric.process({}, [s.to_dict() for s in preds])
            recalls.append(metric.compute_metrics(metric.results))
    assert recalls[0] == recalls[1] and recalls[0]['recall@300_iou30'] > 0
    train = detector.data_preprocessor(raw_batch(1), True)['data_samples'][0].gt_instances
    assert torch.equal(getattr(train.bboxes, 'tensor', train.bboxes),
                       torch.tensor([[5., 10., 20., 40.]]))  # training: scaled with the images


def test_bad_settings():
    with pytest.raises(ValueError, match='input_scale must be in'):
        MODELS.build(dict(type='ScaledInputDataPreprocessor', input_scale=2))
    with pytest.raises(ValueError, match='pad_size_divisor 5 x input_scale 0.5'):
        MODELS.build(dict(type='ScaledInputDataPreprocessor', input_scale=0.5,
                          pad_size_divisor=5))
    assert input_scale_of(dict(type='DetDataPreprocessor')) is None
    assert input_scale_of(None) is None


def test_config_helpers():
    scaled = dict(type='ScaledInputDataPreprocessor', input_scale=0.5, pad_size_divisor=32)
    assert input_scale_of(scaled) == 0.5
    assert input_scale_of(dict(scaled, type=ScaledInputDataPreprocessor)) == 0.5
    assert input_scale_of(dict(scaled, type='mmdet.ScaledInputDataPreprocessor')) == 0.5
    assert plain_preprocessor(scaled) == dict(type='DetDataPreprocessor', pad_size_divisor=32)
    assert scaled['type'] == 'ScaledInputDataPreprocessor'  # the input is not modified
    assert plain_preprocessor(None) == dict(type='DetDataPreprocessor')


def test_distiller_takes_the_plain_part_of_a_scaled_student(teacher_ckpt):
    """The teacher sees the plain batch; the student's input_scale must be the distiller's."""
    register_all_modules()
    cfg = Config.fromfile(DECONV_MIMIC_CFG).model
    cfg.teacher_ckpt = teacher_ckpt
    cfg.student.data_preprocessor = dict(cfg.student.data_preprocessor,
                                         type='ScaledInputDataPreprocessor', input_scale=0.5)
    model = MODELS.build(cfg)
    assert type(model.data_preprocessor).__name__ == 'DetDataPreprocessor'
    assert model.student_input_scale == 0.5
    with pytest.raises(ValueError, match='has input_scale=0.5 but the distiller.s '
                                         'student_input_scale is 1.0'):
        MODELS.build(dict(cfg, student_input_scale=1.0))
    with pytest.raises(ValueError, match='the teacher would see the resized batch'):
        MODELS.build(dict(cfg, data_preprocessor=cfg.student.data_preprocessor))
