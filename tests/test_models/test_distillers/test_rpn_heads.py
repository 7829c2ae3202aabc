"""Every RPN head type mmdet's own configs use as ``rpn_head`` either trains under the distiller
(proposals taken as that head's own ``loss_and_predict`` takes them, finite losses) or is
refused when the distiller is built, naming the head (issue #25, item 5).

The students are mmdet's own configs (``mmdet/.mim/configs``) shrunk to a ResNet-18 trunk of
width 8, 32-channel FPN and heads, on 96x128 images; the teacher is the tiny stride-16 RPN.
"""
import copy
import math
import os.path as osp

import pytest
import torch
from mmmimic.testing.distill import TEACHER_CFG, make_batch, mimic_model_cfg
from mmengine.config import Config, ConfigDict

import mmdet
from mmdet.registry import MODELS
from mmmimic.models.distillers import FeatureMimicDistiller

MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
WIDTH = 32  # FPN and head channels (FCOS's GroupNorm has 32 groups)
BACKBONE = dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                style='pytorch', init_cfg=None)
SHRINK = {256: WIDTH, 1024: WIDTH, 2048: WIDTH}  # channels, fc and feed-forward widths

# (mmdet config, its rpn_head type, index of the stride-16 map in extract_feat)
SUPPORTED = [
    ('rpn/rpn_r50_fpn_1x_coco.py', 'RPNHead', 2),
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'RPNHead', 2),
    ('faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py', 'FCOSHead', 1),  # neck start_level=1
    ('guided_anchoring/ga-rpn_r50_fpn_1x_coco.py', 'GARPNHead', 2),
    ('guided_anchoring/ga-faster-rcnn_r50_fpn_1x_coco.py', 'GARPNHead', 2),
    ('cascade_rpn/cascade-rpn_r50-caffe_fpn_1x_coco.py', 'CascadeRPNHead', 2),
    ('cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py', 'CascadeRPNHead', 2),
]
REFUSED = [
    ('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py', 'EmbeddingRPNHead'),
    ('queryinst/queryinst_r50_fpn_1x_coco.py', 'EmbeddingRPNHead'),
]


def _shrink(node):
    """Every 256/1024/2048 channel, fc or feed-forward width of a model config made tiny."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, int) and not isinstance(value, bool) and value in SHRINK and \
                    ('channels' in key or key == 'embed_dims'):
                node[key] = SHRINK[value]
            elif key == 'num_heads' and isinstance(value, int):
                node[key] = 2
            else:
                _shrink(value)
    elif isinstance(node, list):
        for value in node:
            _shrink(value)


def tiny_student(config: str) -> ConfigDict:
    """mmdet's ``config`` model with the tiny trunk, the teacher's normalisation and tiny heads."""
    model = Config.fromfile(osp.join(MMDET_CONFIGS, config)).model
    model.backbone = ConfigDict(BACKBONE)
    model.neck.in_channels = [8, 16, 32, 64]
    model.data_preprocessor = copy.deepcopy(Config.fromfile(TEACHER_CFG).model.data_preprocessor)
    model.data_preprocessor.pad_size_divisor = 32
    _shrink(model)
    if model.type == 'RPN' and model.rpn_head.type == 'CascadeRPNHead':
        # mmdet 3.3 cannot build its own cascade-rpn_r50-caffe_fpn config: its RPN detector sets
        # no num_classes, which CascadeRPNHead requires (TwoStageDetector sets 1), and its stages
        # pass a 2.x 'sampling' key that AnchorHead no longer takes
        model.rpn_head.num_classes = 1
        for stage in model.rpn_head.stages:
            stage.pop('sampling')
    return model


def distiller_cfg(teacher_ckpt, student: ConfigDict, student_feature: int, **overrides):
    return mimic_model_cfg(teacher_ckpt, student=student, student_feature=student_feature,
                           **overrides)


@pytest.mark.parametrize('config,head_type,feature', SUPPORTED,
                         ids=[f'{c.split("/")[1][:-3]}' for c, _, _ in SUPPORTED])
def test_supported_rpn_head_trains_on_its_own_proposals(teacher_ckpt, config, head_type, feature):
    torch.manual_seed(0)
    student = tiny_student(config)
    model = MODELS.build(distiller_cfg(teacher_ckpt, student, feature)).train()
    assert type(model.student_rpn).__name__ == head_type
    two_stage = getattr(model.student, 'with_roi_head', False)
    assert model.mimic_cfg.proposal == (model.student.train_cfg.rpn_proposal if two_stage
                                        else model.student_rpn.test_cfg)
    inputs, samples = make_batch()
    seen = []
    sample_rois = model.sample_rois

    def recording(rpn_results_list, batch_data_samples):  # the RoI head pops 'bboxes' later
        seen.extend(copy.deepcopy(rpn_results_list))
        return sample_rois(rpn_results_list, batch_data_samples)

    model.sample_rois = recording
    losses = model.loss(inputs, samples)
    # the mimic RoIs come from the proposals the head's own loss_and_predict gives (what mmdet's
    # TwoStageDetector.loss calls), bit for bit
    proposals = seen
    rpn_samples = model._class_agnostic(samples)
    with torch.no_grad():
        _, expected = model.student_rpn.loss_and_predict(
            model.student.extract_feat(inputs), rpn_samples,
            proposal_cfg=model.mimic_cfg.proposal)
    assert len(proposals) == len(expected) == len(samples)
    for got, want in zip(proposals, expected):
        assert len(got) > 0
        assert torch.equal(got.bboxes, want.bboxes) and torch.equal(got.scores, want.scores)
    # the head's gt losses (mmdet's two-stage names), the mimic loss, the RoI head's: all finite
    assert 'loss_mimic' in losses
    rpn_keys = [k for k in losses if 'rpn' in k and 'loss' in k]
    assert rpn_keys, losses.keys()
    if two_stage:
        assert {'loss_cls', 'loss_bbox'} <= set(losses)
    loss, log_vars = model.parse_losses(losses)
    assert all(math.isfinite(v) for v in log_vars.values()), log_vars
    loss.backward()
    grads = [p.grad for p in model.student_rpn.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.connector.parameters())


def test_fcos_rpn_losses_do_not_clash_with_the_roi_head(teacher_ckpt):
    """mmdet's TwoStageDetector renames a head's loss keys without 'rpn' (FCOS's loss_cls,
    loss_bbox, loss_centerness) to rpn_*; the distiller does the same, so none is overwritten."""
    torch.manual_seed(0)
    student = tiny_student('faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py')
    model = MODELS.build(distiller_cfg(teacher_ckpt, student, 1)).train()
    losses = model.loss(*make_batch())
    assert {'rpn_loss_cls', 'rpn_loss_bbox', 'rpn_loss_centerness', 'loss_cls', 'loss_bbox',
            'acc', 'loss_mimic'} <= set(losses)


@pytest.mark.parametrize('config,head_type', REFUSED,
                         ids=[c.split('/')[1][:-3] for c, _ in REFUSED])
def test_unsupported_rpn_head_is_refused_at_build_naming_it(teacher_ckpt, config, head_type):
    student = tiny_student(config)
    MODELS.build(copy.deepcopy(student))  # mmdet itself builds this student
    with pytest.raises(TypeError, match=f'^the student RPN head {head_type} .*is refused: '
                                        '.*supported: RPNHead') as info:
        MODELS.build(distiller_cfg(teacher_ckpt, student, 2))
    assert '\n' not in str(info.value)


def test_a_lone_cascade_rpn_stage_is_refused_pointing_to_cascade_rpn_head(teacher_ckpt):
    student = tiny_student('cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py')
    stage = student.rpn_head.stages[1]
    stage.anchor_generator = dict(type='AnchorGenerator', scales=[8], ratios=[1.0],
                                  strides=[4, 8, 16, 32, 64])
    stage.adapt_cfg = dict(type='dilation', dilation=3)
    student.rpn_head = stage
    student.train_cfg.rpn = student.train_cfg.rpn[1]
    with pytest.raises(TypeError, match="^the student RPN head StageCascadeRPNHead is refused: "
                                        ".*use rpn_head=dict\\(type='CascadeRPNHead'"):
        MODELS.build(distiller_cfg(teacher_ckpt, student, 2))


def test_check_student_rpn_is_callable_on_a_built_student():
    """What wrap_with_teacher calls on the student it builds, before any training."""
    for config, head_type, _ in SUPPORTED:
        student = MODELS.build(tiny_student(config))
        kind = FeatureMimicDistiller.check_student_rpn(student)
        assert kind == {'RPNHead': 'rpn', 'CascadeRPNHead': 'cascade'}.get(head_type, 'dense')
    fast = tiny_student('rpn/rpn_r50_fpn_1x_coco.py')
    fast.rpn_head.type = 'FastExactRPNHead'
    assert FeatureMimicDistiller.check_student_rpn(MODELS.build(fast)) == 'rpn'
    sparse = MODELS.build(tiny_student(REFUSED[0][0]))
    with pytest.raises(TypeError, match='EmbeddingRPNHead'):
        FeatureMimicDistiller.check_student_rpn(sparse)


def test_logits_mimic_refuses_a_non_rpn_head_student(teacher_ckpt):
    """Logits mimic compares (cls_scores, bbox_preds) on the same anchors: RPNHead only."""
    student = tiny_student('faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py')
    with pytest.raises(TypeError, match='the student RPN head is FCOSHead'):
        MODELS.build(distiller_cfg(teacher_ckpt, student, 1,
                                   mimic_loss=dict(type='RPNLogitsL2Loss'), connector=None))
