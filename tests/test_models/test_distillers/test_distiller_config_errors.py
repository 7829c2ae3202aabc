"""Bad distiller settings are refused at build time with a message naming the key at fault."""
import math

import pytest
from mmmimic.testing.distill import build_distiller


@pytest.mark.parametrize('key,index', [('student_feature', 1), ('student_feature', -2),
                                       ('teacher_feature', 3)])
def test_out_of_range_feature_index_names_key_index_and_map_count(teacher_ckpt, key, index):
    # the tiny student and teacher return one map each (backbone out_indices=(2, ), no neck)
    with pytest.raises(ValueError) as err:
        build_distiller(teacher_ckpt, **{key: index})
    message = str(err.value)
    assert f'{key}={index}' in message
    assert 'returns 1 feature map' in message
    assert 'valid: -1..0' in message


@pytest.mark.parametrize('index', ['-1', 0.0, True, None])
def test_non_integer_feature_index_is_refused(teacher_ckpt, index):
    with pytest.raises(TypeError, match=f'student_feature must be an int, got {index!r}'):
        build_distiller(teacher_ckpt, student_feature=index)


def test_in_range_negative_and_positive_indices_build(teacher_ckpt):
    model = build_distiller(teacher_ckpt, student_feature=0, teacher_feature=-1)
    assert (model.student_feature, model.teacher_feature) == (0, -1)


def test_unknown_mimic_cfg_key_names_it_and_the_valid_keys(teacher_ckpt):
    with pytest.raises(KeyError) as err:
        build_distiller(teacher_ckpt, mimic_cfg=dict(samplr=dict(num=64), proposal=None))
    message = str(err.value)
    assert "'samplr'" in message
    assert "['assigner', 'proposal', 'proposal_candidates', 'sampler']" in message


@pytest.mark.parametrize('candidates', [(1000, 500), -5, 'all'])
def test_bad_proposal_candidates_are_refused_naming_the_key(teacher_ckpt, candidates):
    with pytest.raises(ValueError, match=r'mimic_cfg\.proposal_candidates must be'):
        build_distiller(teacher_ckpt, mimic_cfg=dict(proposal_candidates=candidates))


def test_a_candidate_ladder_builds(teacher_ckpt):
    model = build_distiller(teacher_ckpt, mimic_cfg=dict(proposal_candidates=(500, 1000)))
    assert tuple(model.mimic_cfg.proposal_candidates) == (500, 1000)


@pytest.mark.parametrize('weight', [-1.0, -1e-9, math.nan, math.inf, '1.0'])
def test_bad_mimic_loss_weight_is_refused_naming_the_key(teacher_ckpt, weight):
    with pytest.raises(ValueError) as err:
        build_distiller(teacher_ckpt,
                        mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=weight))
    message = str(err.value)
    assert 'mimic_loss' in message and 'loss_weight' in message and repr(weight) in message


def test_zero_loss_weight_is_accepted(teacher_ckpt):
    model = build_distiller(teacher_ckpt,
                            mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=0))
    assert model.mimic_loss.loss_weight == 0


def test_a_loss_outside_the_mimic_contract_is_refused_at_build(teacher_ckpt):
    # before: silently treated as RoI-based, failing only at the first training step
    with pytest.raises(TypeError) as err:
        build_distiller(teacher_ckpt, mimic_loss=dict(type='MSELoss', loss_weight=1.0))
    assert str(err.value).startswith('mimic_loss: MSELoss is not a mimic loss')
    assert 'BaseMimicLoss' in str(err.value)


def test_a_mimic_loss_in_the_wrong_slot_is_refused(teacher_ckpt):
    with pytest.raises(TypeError, match="mimic_loss: RoILogitsL2Loss compares "
                                        "'roi_head_outputs'"):
        build_distiller(teacher_ckpt, mimic_loss=dict(type='RoILogitsL2Loss'))
    with pytest.raises(TypeError, match="roi_mimic_cls_loss: ProposalSampledL2Loss compares "
                                        r"'rois', but roi_mimic_cls_loss takes a loss of "
                                        r"mimic_input \['roi_head_outputs'\]"):
        build_distiller(teacher_ckpt, roi_mimic_cls_loss=dict(type='ProposalSampledL2Loss'))


def test_unknown_loss_argument_names_the_slot(teacher_ckpt):
    with pytest.raises(TypeError, match="^mimic_loss: .*unexpected keyword argument 'weight'"):
        build_distiller(teacher_ckpt, mimic_loss=dict(type='ProposalSampledL2Loss', weight=1.0))


def test_mimic_cfg_merges_into_the_defaults_field_by_field(teacher_ckpt):
    # before: a given key replaced its default as a whole, so this assigner had no type
    model = build_distiller(teacher_ckpt, mimic_cfg=dict(assigner=dict(ignore_iof_thr=0.5),
                                                         sampler=dict(num=64)))
    assert model.mimic_cfg.assigner == dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
        match_low_quality=False, ignore_iof_thr=0.5)
    assert model.roi_assigner.ignore_iof_thr == 0.5 and model.roi_assigner.pos_iou_thr == 0.5
    assert (model.roi_sampler.num, model.roi_sampler.pos_fraction) == (64, 0.5)
    assert model.roi_sampler.add_gt_as_proposals is False
    assert model.mimic_cfg.proposal == model.student_rpn.test_cfg


def test_mimic_cfg_delete_replaces_a_default_as_a_whole():
    from mmmimic.models.distillers import DEFAULT_MIMIC_CFG, merge_mimic_cfg
    cfg = dict(sampler=dict(_delete_=True, type='RandomSampler', num=32, pos_fraction=0.25))
    merged = merge_mimic_cfg(cfg)
    assert merged.sampler == dict(type='RandomSampler', num=32, pos_fraction=0.25)
    assert merged.assigner == DEFAULT_MIMIC_CFG['assigner']
    assert '_delete_' in cfg['sampler'] and DEFAULT_MIMIC_CFG['sampler']['num'] == 128  # untouched
    assert merge_mimic_cfg(None) == DEFAULT_MIMIC_CFG
    proposal = dict(nms_pre=100, max_per_img=10, nms=dict(type='nms', iou_threshold=0.7))
    assert merge_mimic_cfg(dict(proposal=proposal)).proposal == proposal
