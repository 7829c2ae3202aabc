"""FeatureMimicDistiller: build-time checks, teacher hygiene, RoI sampling, checkpoints, predict."""
import copy
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmmimic.models.distillers import FeatureMimicDistiller
from mmmimic.testing.one_stage import mmdet_config_path
from mmmimic.testing.distill import CONFIG_DIR, TEACHER_CFG, build_distiller, make_batch


def _teacher_state(model):
    return {k: v.clone() for k, v in model.teacher.state_dict().items()}


def test_build_reads_channels_and_strides(teacher_ckpt):
    model = build_distiller(teacher_ckpt)
    assert model.student_stride == 16 and model.teacher_stride == 16
    assert (model.connector.in_channels, model.connector.out_channels) == (32, 64)
    assert model.student_rpn is model.student.bbox_head
    assert model.mimic_cfg.sampler.num == 128 and model.mimic_cfg.sampler.pos_fraction == 0.5
    assert not model.mimic_cfg.sampler.add_gt_as_proposals
    # an RPN student's mimic proposals are those of its own predict step
    assert model.mimic_cfg.proposal == model.student_rpn.test_cfg


def test_teacher_checkpoint_errors(teacher_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere/teacher.pth'):
        build_distiller('/nowhere/teacher.pth')
    with pytest.raises(ValueError, match='needs a checkpoint'):
        build_distiller(None)
    state = torch.load(teacher_ckpt)['state_dict']
    state.pop('backbone.conv1.weight')
    state['neck.extra.weight'] = torch.zeros(1)
    bad = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': state}, bad)
    with pytest.raises(KeyError) as err:
        build_distiller(bad)
    assert 'backbone.conv1.weight' in str(err.value) and 'neck.extra.weight' in str(err.value)
    assert 'missing keys (1)' in str(err.value) and 'unexpected keys (1)' in str(err.value)


def test_connector_and_stride_errors(teacher_ckpt):
    with pytest.raises(ValueError, match='student map has 32 channels and the teacher map has 64'):
        build_distiller(teacher_ckpt, connector=dict(type='Conv1x1Connector', in_channels=16))
    with pytest.raises(ValueError, match='32 channels.*64 channels'):
        build_distiller(teacher_ckpt, connector=None)
    # a stride-8 teacher cannot be mimicked by a stride-16 student through a 1x1 connector
    teacher = Config.fromfile(TEACHER_CFG).model
    teacher.backbone.strides = (1, 2, 1)
    teacher.rpn_head.anchor_generator.strides = [8]
    torch.save({'state_dict': MODELS.build(copy.deepcopy(teacher)).state_dict()},
               teacher_ckpt + '.s8')
    with pytest.raises(ValueError, match='effective stride 16.0 but the teacher map has stride 8'):
        build_distiller(teacher_ckpt + '.s8', teacher=teacher)
    # anchors that disagree with the network's real stride are caught too
    teacher.rpn_head.anchor_generator.strides = [16]
    with pytest.raises(ValueError, match='stride 8.0 \\(measured\\).*stride 16'):
        build_distiller(teacher_ckpt + '.s8', teacher=teacher)


def test_training_steps_leave_teacher_untouched(teacher_ckpt):
    torch.manual_seed(0)
    model = build_distiller(teacher_ckpt, init_weights=True)
    ckpt_state = torch.load(teacher_ckpt)['state_dict']
    for k, v in _teacher_state(model).items():
        assert torch.equal(v, ckpt_state[k]), k  # init_weights() did not touch the teacher
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model.train()
    assert not model.teacher.training and model.student.training
    assert not any(m.training for m in model.teacher.modules())
    for step in range(3):
        inputs, samples = make_batch(seed=step)
        losses = model.loss(inputs, samples)
        assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mimic'}
        total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
        optim.zero_grad()
        total.backward()
        optim.step()
    for name, p in model.teacher.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, ckpt_state[k]), k  # weights and BN statistics unchanged
    changed = [k for k, v in model.student.state_dict().items()
               if not torch.equal(v, student_before[k])]
    assert any('running_mean' in k for k in changed) and any('conv' in k for k in changed)
    assert model.connector.conv.conv.weight.grad is not None


def test_teacher_features_match_standalone_teacher(teacher_ckpt):
    model = build_distiller(teacher_ckpt)
    model.train()
    teacher = MODELS.build(Config.fromfile(TEACHER_CFG).model)
    teacher.load_state_dict(torch.load(teacher_ckpt)['state_dict'])
    teacher.eval()
    inputs, _ = make_batch()
    feats = model.extract_teacher_feat(inputs)
    assert not feats[-1].requires_grad
    with torch.no_grad():
        assert torch.equal(feats[-1], teacher.extract_feat(inputs)[-1])


def test_rois_are_sampled_from_the_students_proposals(teacher_ckpt):
    torch.manual_seed(0)
    model = build_distiller(teacher_ckpt)
    model.train()
    record = {}
    predict_by_feat = model.student_rpn.predict_by_feat
    sample_rois = model.sample_rois

    def spy_predict(*args, **kwargs):
        record['proposals'] = predict_by_feat(*args, **kwargs)
        return record['proposals']

    def spy_sample(rpn_results_list, samples):
        record['given'] = rpn_results_list
        record['rois'] = sample_rois(rpn_results_list, samples)
        return record['rois']

    model.student_rpn.predict_by_feat = spy_predict
    model.sample_rois = spy_sample
    inputs, samples = make_batch()
    model.loss(inputs, samples)
    assert record['given'] is record['proposals']  # the student RPN's own predict step
    rois = record['rois']
    assert len(rois) > 0
    for img, proposals in enumerate(record['proposals']):
        assert not proposals.bboxes.requires_grad
        img_rois = rois[rois[:, 0] == img, 1:]
        assert 0 < len(img_rois) <= 128
        # every sampled RoI is (bit-identically) one of this image's student proposals
        same = (img_rois[:, None, :] == proposals.bboxes[None]).all(-1)
        assert same.any(1).all()
        gt = samples[img].gt_instances.bboxes
        assert not (img_rois[:, None, :] == gt[None]).all(-1).any()  # not the gt boxes
    # the teacher's proposals would differ: the RoIs are not the teacher's
    with torch.no_grad():
        t_props = model.teacher.bbox_head.predict(model.extract_teacher_feat(inputs), samples)
    assert not torch.equal(t_props[0].bboxes, record['proposals'][0].bboxes)


def _proposals_around(gt, num_pos, num_neg, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = gt.repeat(num_pos, 1) + torch.randn(num_pos, 4, generator=g)  # IoU ~ 0.9
    neg = torch.tensor([[100., 0., 126., 12.]]).repeat(num_neg, 1) + \
        torch.rand(num_neg, 4, generator=g)
    return InstanceData(bboxes=torch.cat([pos, neg]), scores=torch.rand(num_pos + num_neg))


@pytest.mark.parametrize('num_pos,num_neg,expected', [
    (300, 700, (64, 64)),  # enough positives: 128 at 1:1
    (10, 500, (10, 118)),  # few positives: all of them, negatives fill up to 128
    (0, 50, (0, 50)),  # no positives and few proposals: all negatives
])
def test_sampling_split(teacher_ckpt, num_pos, num_neg, expected):
    torch.manual_seed(0)
    model = build_distiller(teacher_ckpt)
    _, samples = make_batch(num_imgs=1)
    gt = samples[0].gt_instances.bboxes[:1]
    samples[0].gt_instances = samples[0].gt_instances[:1]
    rois = model.sample_rois([_proposals_around(gt, num_pos, num_neg)], samples)
    ious = bbox_overlaps(rois[:, 1:], gt).max(1).values
    assert (int((ious >= 0.5).sum()), int((ious < 0.5).sum())) == expected


def test_checkpoint_holds_student_only_and_reloads(teacher_ckpt):
    torch.manual_seed(0)
    model = build_distiller(teacher_ckpt)
    state = model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('student.') for k in state)
    assert any(k.startswith('connector.') for k in state)
    assert not any(k.startswith('teacher') for k in state._metadata)
    torch.manual_seed(1)
    other = build_distiller(teacher_ckpt)
    # strict loading of a student-only state dict works; a stale teacher entry is ignored
    state['teacher.backbone.conv1.weight'] = torch.zeros_like(
        other.teacher.backbone.conv1.weight)
    other.load_state_dict(state, strict=True)
    for k, v in model.student.state_dict().items():
        assert torch.equal(v, other.student.state_dict()[k])
    ckpt_state = torch.load(teacher_ckpt)['state_dict']
    assert torch.equal(other.teacher.backbone.conv1.weight, ckpt_state['backbone.conv1.weight'])


def test_predict_runs_the_student_only(teacher_ckpt):
    model = build_distiller(teacher_ckpt)
    model.eval()
    inputs, samples = make_batch(num_imgs=1)
    calls = []
    model.teacher.register_forward_pre_hook(lambda *a: calls.append(1))
    model.teacher.backbone.register_forward_pre_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        theirs = model.student.predict(inputs, copy.deepcopy(samples))
    assert not calls
    assert torch.equal(ours[0].pred_instances.bboxes, theirs[0].pred_instances.bboxes)
    out = model(inputs, samples, mode='tensor')
    assert out[0][0].shape[1] == 6  # the student RPN's objectness map (6 anchors)


@pytest.mark.parametrize('config_name,connector', [
    ('logits-mimic_rpn_r18-w8_tiny.py', False), ('whole-mimic_rpn_r18-w8_tiny.py', True)])
def test_table4_baselines_train(teacher_ckpt, config_name, connector):
    model = build_distiller(teacher_ckpt, config=f'{CONFIG_DIR}/{config_name}')
    assert (model.connector is not None) == connector
    model.train()
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mimic'}
    losses['loss_mimic'].backward()
    assert model.student.backbone.conv1.weight.grad is not None


def test_pooled_eq3_variant_and_two_stage_student(teacher_ckpt):
    """Eq. 3 plugs in as the mimic loss; a two-stage student also trains its RoI head."""
    student = Config.fromfile(TEACHER_CFG).model
    student.backbone.base_channels = 8
    rpn_head = student.pop('rpn_head')
    rpn_head.update(in_channels=32, feat_channels=32)
    two_stage = dict(
        type='FasterRCNN',
        data_preprocessor=student.data_preprocessor,
        backbone=student.backbone,
        rpn_head=rpn_head,
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=32,
                featmap_strides=[16]),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=32, fc_out_channels=64, roi_feat_size=7,
                num_classes=1,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
        train_cfg=dict(
            rpn=student.train_cfg.rpn,
            rpn_proposal=dict(nms_pre=500, max_per_img=200,
                              nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
            rcnn=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                              min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=student.test_cfg.rpn,
            rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100)))
    model = build_distiller(teacher_ckpt, student=two_stage,
                            mimic_loss=dict(type='PooledFeatureL2Loss', output_size=(3, 3)))
    assert model.student_rpn is model.student.rpn_head
    # a two-stage student's mimic proposals are its own training proposals (rpn_proposal)
    assert model.mimic_cfg.proposal.max_per_img == 200
    model.train()
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mimic', 'loss_cls', 'loss_bbox'} <= set(losses)
    model.eval()
    with torch.no_grad():
        preds = model.predict(inputs, samples)
    assert 'labels' in preds[0].pred_instances


def test_deconv_connector_lets_a_stride16_student_mimic_a_stride8_teacher(teacher_ckpt, tmp_path):
    """The path cross-scale mimic (issue 6) builds on: student stride 16 -> deconv x2 -> 8."""
    teacher = Config.fromfile(TEACHER_CFG).model
    teacher.backbone.strides = (1, 2, 1)
    teacher.rpn_head.anchor_generator.strides = [8]
    ckpt = str(tmp_path / 'teacher_s8.pth')
    torch.save({'state_dict': MODELS.build(copy.deepcopy(teacher)).state_dict()}, ckpt)
    model = build_distiller(ckpt, teacher=teacher, connector=dict(type='Deconv2xConnector'))
    assert (model.student_stride, model.teacher_stride) == (16, 8)
    model.train()
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    losses['loss_mimic'].backward()
    assert model.connector.deconv.weight.grad is not None
    # cross-scale (issue 6, now implemented): a half-size input needs the lost x2 back
    with pytest.raises(ValueError, match='effective stride 32.0'):
        build_distiller(ckpt, teacher=teacher, student_input_scale=0.5)


def test_config_errors(teacher_ckpt):
    with pytest.raises(FileNotFoundError, match='teacher config not found: /nowhere/t.py'):
        build_distiller(teacher_ckpt, teacher='/nowhere/t.py')
    teacher = Config.fromfile(TEACHER_CFG).model
    teacher.data_preprocessor.mean = [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match='normalise images differently: mean'):
        build_distiller(teacher_ckpt, teacher=teacher)
    student = Config.fromfile(TEACHER_CFG).model
    student.type = 'RetinaNet'
    student.bbox_head = dict(
        type='RetinaHead', num_classes=1, in_channels=64, feat_channels=64,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                              ratios=[2.0], strides=[16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True), loss_bbox=dict(type='L1Loss'))
    student.pop('rpn_head')
    retinanet = Config.fromfile(mmdet_config_path('_base_/models/retinanet_r50_fpn.py')).model
    student.train_cfg, student.test_cfg = retinanet.train_cfg, retinanet.test_cfg
    model = build_distiller(teacher_ckpt, student=student)  # a single-level one-stage student
    assert model.one_stage and model.mimic_cfg.proposal.score_thr == 0.0
    inputs, samples = make_batch()
    assert model.loss(inputs, samples)['loss_mimic'] > 0
    with pytest.raises(TypeError, match=r'the student \(HeadlessDetector\) has no RPN head and '
                       r'is not a one-stage detector'):
        FeatureMimicDistiller.check_student_rpn(HeadlessDetector())


class HeadlessDetector(BaseDetector):
    """Neither an RPN nor a one-stage head: nothing to take the mimic RoIs from."""

    def loss(self, *args):
        pass

    predict = _forward = extract_feat = loss


def test_the_mimic_proposals_take_the_exact_cheap_pass(teacher_ckpt):
    torch.manual_seed(0)
    model = build_distiller(teacher_ckpt).train()
    assert tuple(model.mimic_cfg.proposal_candidates) == (500, 1000)  # the default
    inputs, samples = make_batch(h=480, w=640)
    with torch.no_grad():
        rpn_outs = model.student_rpn(model.student.extract_feat(inputs))
    assert rpn_outs[0][0][0].numel() > 500  # the cheap pass cuts something here
    head = model.student_rpn
    with mock.patch.object(head, 'predict_by_feat', wraps=head.predict_by_feat) as spy:
        fast = model._student_proposals(rpn_outs, samples)
        assert spy.call_args_list[0].kwargs['cfg'].nms_pre == 500
        model.mimic_cfg.proposal_candidates = None
        full = model._student_proposals(rpn_outs, samples)
        assert spy.call_args.kwargs['cfg'].nms_pre == model.mimic_cfg.proposal.nms_pre
    for a, b in zip(fast, full):
        assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)
