"""Two-stage mimic (paper Sec. 3.4) with Faster R-CNN (StandardRoIHead) and R-FCN heads."""
import os.path as osp

import pytest
import torch
from mmmimic.testing.distill import make_batch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmmimic.models.losses import RoILogitsL2Loss, roi_logits_l2_loss

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')
TWO_STAGE_DIR = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'two_stage_mimic')
FASTER_CFG = osp.join(TWO_STAGE_DIR, 'faster-rcnn_r18-w8_two-stage-mimic_tiny.py')
RFCN_CFG = osp.join(TWO_STAGE_DIR, 'rfcn_r18-w8_two-stage-mimic_tiny.py')
CONFIGS = pytest.mark.parametrize('config', [FASTER_CFG, RFCN_CFG], ids=['faster-rcnn', 'rfcn'])


def teacher_ckpt_for(config, path):
    """A checkpoint of the (random) two-stage teacher with non-trivial BN statistics."""
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(Config.fromfile(config).model.teacher).model)
    for name, buf in teacher.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


def two_stage_cfg(config, tmp_path, student_is_teacher=False, **overrides):
    cfg = Config.fromfile(config).model
    cfg.teacher_ckpt = teacher_ckpt_for(config, str(tmp_path / 'teacher.pth'))
    cfg.student.backbone.init_cfg = None  # stage-1 loading is test_stage2's subject
    cfg.student.rpn_head.pop('init_cfg')
    if student_is_teacher:
        cfg.student = Config.fromfile(cfg.teacher).model
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def test_roi_logits_l2_loss_values():
    pred = torch.tensor([[1., 2.], [0., 0.], [3., -1.]], requires_grad=True)
    target = torch.tensor([[0., 2.], [1., 1.], [3., 1.]])
    loss = RoILogitsL2Loss(loss_weight=0.5)(pred, target)
    assert loss.item() == pytest.approx(0.5 * (1 + 2 + 4) / (2 * 3))
    loss.backward()
    assert torch.allclose(pred.grad, 0.5 * (pred - target).detach() / 3)
    empty = torch.zeros(0, 2, requires_grad=True)
    assert roi_logits_l2_loss(empty, torch.zeros(0, 2)).item() == 0
    with pytest.raises(ValueError, match=r'\(3, 2\) \(student\) vs \(3, 4\) \(teacher\)'):
        roi_logits_l2_loss(pred, torch.zeros(3, 4))


@CONFIGS
def test_teacher_and_student_roi_heads_see_identical_rois(config, tmp_path):
    model = MODELS.build(two_stage_cfg(config, tmp_path))
    seen = {}

    def recorder(name, forward):
        def wrapped(x, rois):
            seen[name] = rois
            return forward(x, rois)
        return wrapped

    for name, head in (('student', model.student.roi_head), ('teacher', model.teacher.roi_head)):
        head._bbox_forward = recorder(name, head._bbox_forward)
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert seen['student'] is seen['teacher']  # the very same RoI tensor
    assert seen['student'].shape[0] > 0
    for key in ('loss_cls', 'loss_bbox', 'loss_rpn_cls', 'loss_mimic', 'loss_mimic_cls',
                'loss_mimic_bbox'):
        assert key in losses, key
    for key in ('loss_mimic_cls', 'loss_mimic_bbox'):
        assert losses[key].requires_grad and losses[key].item() > 0
    # RoIs sampled by the student RoI head's own sampler: its num caps them per image
    assert seen['student'].shape[0] <= 2 * model.student.roi_head.bbox_sampler.num
    # the frozen teacher gets no gradient
    sum(v for k, v in losses.items() if 'loss' in k and torch.is_tensor(v)).backward()
    assert all(p.grad is None for p in model.teacher.parameters())


@CONFIGS
def test_two_stage_mimic_is_zero_for_a_copy_of_the_teacher(config, tmp_path):
    model = MODELS.build(two_stage_cfg(config, tmp_path, student_is_teacher=True, mimic_loss=None,
                                       connector=None))
    model.student.load_state_dict(model.teacher.state_dict())
    model.student.eval()  # BN as the teacher's (running statistics)
    losses = model.loss(*make_batch())
    assert 'loss_mimic' not in losses  # feature mimic off
    assert losses['loss_mimic_cls'].item() == 0
    assert losses['loss_mimic_bbox'].item() == 0
    assert losses['loss_cls'].item() > 0  # the ground-truth losses stay on


def test_two_stage_mimic_needs_two_stage_networks(tmp_path, teacher_ckpt):
    cfg = two_stage_cfg(FASTER_CFG, tmp_path)
    cfg.teacher = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'mimic', 'rpn_r18-w16_tiny.py')
    cfg.teacher_ckpt = teacher_ckpt
    with pytest.raises(TypeError, match='two-stage teacher'):
        MODELS.build(cfg)


def test_loss_weights_are_configurable(tmp_path):
    cfg = two_stage_cfg(FASTER_CFG, tmp_path, mimic_loss=None, connector=None,
                        roi_mimic_bbox_loss=None)
    cfg.roi_mimic_cls_loss.loss_weight = 0.25
    model = MODELS.build(cfg)
    assert model.roi_mimic_cls_loss.loss_weight == 0.25
    losses = model.loss(*make_batch())
    assert 'loss_mimic_cls' in losses and 'loss_mimic_bbox' not in losses


@pytest.mark.parametrize('slot', ['roi_mimic_cls_loss', 'roi_mimic_bbox_loss'])
def test_negative_roi_mimic_loss_weight_is_refused(tmp_path, slot):
    cfg = two_stage_cfg(FASTER_CFG, tmp_path)
    cfg[slot].loss_weight = -0.5
    with pytest.raises(ValueError, match=f'^{slot}: RoILogitsL2Loss: loss_weight must be a finite '
                                         'number >= 0, got -0.5'):
        MODELS.build(cfg)


@pytest.mark.parametrize('mimic_loss', [dict(type='ProposalSampledL2Loss'), None])
def test_student_proposals_are_computed_once_per_step(tmp_path, mimic_loss):
    model = MODELS.build(two_stage_cfg(FASTER_CFG, tmp_path, mimic_loss=mimic_loss))
    calls = []
    predict_by_feat = model.student_rpn.predict_by_feat

    def counting(*args, **kwargs):
        calls.append(predict_by_feat(*args, **kwargs))
        return calls[-1]

    model.student_rpn.predict_by_feat = counting
    seen = {}
    loss_roi_stage = model.loss_roi_stage

    def recording(student_feats, teacher_feats, rpn_results_list, samples):
        seen['proposals'] = rpn_results_list
        return loss_roi_stage(student_feats, teacher_feats, rpn_results_list, samples)

    model.loss_roi_stage = recording
    model.loss(*make_batch())
    assert len(calls) == 1 and seen['proposals'] is calls[0]  # mimic RoIs and RoI head share
