"""Pyramid mimic: level pairs by stride, the RoI-to-level rule, the combined Eq. 4, refusals."""
import copy

import pytest
import torch
from mmengine.config import Config

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from mmmimic.models.distillers import pyramid
from mmmimic.models.losses.feature_mimic_loss import roi_cell_ranges
from mmmimic.testing import config_path
from mmmimic.testing.distill import build_distiller, make_batch, make_teacher_ckpt

FPN_CFG = config_path('smoke/faster-rcnn_r18-tiny_tiny-coco.py')


def fpn_student():
    return Config.fromfile(FPN_CFG).model


def fpn_teacher(channels=48):
    """mmdet's Faster R-CNN FPN (tiny ResNet-18) with a wider neck than the student's."""
    t = copy.deepcopy(fpn_student())
    t.neck.out_channels = channels
    t.rpn_head.in_channels = t.rpn_head.feat_channels = channels
    t.roi_head.bbox_roi_extractor.out_channels = channels
    t.roi_head.bbox_head.in_channels = channels
    return t


@pytest.fixture(scope='module')
def fpn_teacher_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    teacher = MODELS.build(fpn_teacher())
    path = str(tmp_path_factory.mktemp('fpn_teacher') / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


def fpn_distiller(ckpt, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='FeatureMimicDistiller', student=fpn_student(),
                             teacher=fpn_teacher(), teacher_ckpt=ckpt, **kwargs))


def test_one_pair_is_todays_loss_bit_for_bit(teacher_ckpt):
    """mimic_levels with the one pair of today equals the default (no key) mode exactly; the
    default mode keeps its module names (``connector.*``)."""
    torch.manual_seed(0)
    today = build_distiller(teacher_ckpt)
    assert any(k.startswith('connector.') for k in today.state_dict())
    assert today.mimic_pairs is None
    torch.manual_seed(0)
    pair = build_distiller(teacher_ckpt, mimic_levels=[dict(student=-1, teacher=-1)])
    pair.connectors[0].load_state_dict(today.connector.state_dict())
    inputs, samples = make_batch()
    torch.manual_seed(1)
    expected = today.loss(inputs, samples)
    torch.manual_seed(1)
    got = pair.loss(inputs, samples)
    assert set(got) == set(expected)
    for key in expected:  # list-valued keys: one loss per RPN level
        values = got[key] if isinstance(got[key], list) else [got[key]]
        targets = expected[key] if isinstance(expected[key], list) else [expected[key]]
        assert all(torch.equal(a, b) for a, b in zip(values, targets)), key
    assert got['loss_mimic'] > 0


def test_fpn_student_every_pair_learns_from_loss_mimic(fpn_teacher_ckpt):
    """Today (one pair: the last level) the output convs of P2-P4 get no mimic gradient; with
    the pyramid every pair's connector and FPN output conv does, through a few SGD steps."""
    today = fpn_distiller(fpn_teacher_ckpt)
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    today.loss(inputs, samples)['loss_mimic'].backward()
    assert all(today.student.neck.fpn_convs[i].conv.weight.grad is None for i in range(3))

    model = fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', level_rule='all')
    assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == [(i, i) for i in range(5)]
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    for it in range(3):
        inputs, samples = make_batch(num_imgs=2, h=128, w=128, seed=it)
        optim.zero_grad()
        loss = model.loss(inputs, samples)['loss_mimic']
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        for k, connector in enumerate(model.connectors):
            assert next(connector.parameters()).grad.abs().sum() > 0, f'connector {k}'
        for i in range(4):  # P6 is a max-pool of P5: fpn_convs[3]
            assert model.student.neck.fpn_convs[i].conv.weight.grad.abs().sum() > 0, i
        optim.step()


def test_scale_rule_sends_each_roi_to_its_level(fpn_teacher_ckpt):
    """With the default rule a pair gets gradient exactly when it has RoIs; the loss is the
    per-level losses weighted by their share of the RoIs."""
    model = fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto')
    assert model.level_rule == 'scale'
    student = [torch.randn(2, 32, 128 // s, 128 // s, requires_grad=True)
               for s in (4, 8, 16, 32, 64)]
    teacher = [torch.randn(2, 48, 128 // s, 128 // s) for s in (4, 8, 16, 32, 64)]
    rois = torch.tensor([[0, 0, 0, 50, 50], [1, 0, 0, 120, 120], [0, 4, 4, 30, 60.]])
    loss = model._pyramid_mimic_loss(student, teacher, rois)
    loss.backward()
    assert [bool(f.grad.abs().sum() > 0) for f in student] == [True, True, False, False, False]
    parts = [model.mimic_loss(model.connectors[lvl](student[lvl]), teacher[lvl], rois[idx],
                              model.mimic_pairs[lvl]['teacher_stride'])
             for lvl, idx in ((0, [0, 2]), (1, [1]))]
    assert torch.allclose(loss, parts[0] * 2 / 3 + parts[1] / 3)
    fixed = fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', level_rule=2)
    assert pyramid.roi_levels(rois, fixed.level_rule, 5).tolist() == [2, 2, 2]


def test_level_rule_is_mmdets_map_roi_levels():
    extractor = SingleRoIExtractor(dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                   out_channels=8, featmap_strides=[4, 8, 16, 32])
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=g) * 800
    wh = torch.rand(2000, 2, generator=g) ** 3 * 1000
    rois = torch.cat([torch.zeros(2000, 1), xy, xy + wh], dim=1)
    for num_levels in (1, 3, 4):
        expected = extractor.map_roi_levels(rois, num_levels)
        assert torch.equal(pyramid.map_roi_levels(rois, num_levels), expected)
        assert torch.equal(pyramid.roi_levels(rois, 'scale', num_levels), expected)
    assert len(set(expected.tolist())) == 4


def test_half_scale_shifts_one_level_and_boxes_come_back(fpn_teacher_ckpt):
    model = fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', student_input_scale=0.5)
    pairs = [(p['student'], p['teacher']) for p in model.mimic_pairs]
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4)]  # P_k -> teacher P_{k+1}; P6 unpaired
    assert all(type(c).__name__ == 'Conv1x1Connector' for c in model.connectors)
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(64, 2, generator=g) * 60
    student_rois = torch.cat([torch.zeros(64, 1), xy, xy + torch.rand(64, 2, generator=g) * 40
                              + 0.25], dim=1)
    teacher_rois = model.to_teacher_coords(student_rois)
    assert torch.equal(teacher_rois[:, 1:] * 0.5, student_rois[:, 1:])
    for pair in model.mimic_pairs:  # the same cells of the student's and the teacher's map
        size = (128 // int(pair['teacher_stride']), ) * 2
        assert torch.equal(roi_cell_ranges(student_rois, pair['student_stride'], size),
                           roi_cell_ranges(teacher_rois, pair['teacher_stride'], size))
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    loss = model.loss(inputs, samples)['loss_mimic']
    assert torch.isfinite(loss) and loss > 0


def test_deconv_pair_is_available(fpn_teacher_ckpt):
    """The paper's route: the teacher's finest level from the student's finest through x2."""
    model = fpn_distiller(fpn_teacher_ckpt, student_input_scale=0.5, mimic_levels=[
        dict(student=0, teacher=0, connector=dict(type='Deconv2xConnector')),
        dict(student=1, teacher=2)])
    names = [type(c).__name__ for c in model.connectors]
    assert names == ['Deconv2xConnector', 'Conv1x1Connector']
    inputs, samples = make_batch(num_imgs=1, h=128, w=128)
    assert torch.isfinite(model.loss(inputs, samples)['loss_mimic'])


def test_refusals_name_key_levels_strides_and_channels(fpn_teacher_ckpt, teacher_ckpt):
    with pytest.raises(ValueError, match=r'mimic_levels\[1\]\.teacher=7 is out of range: the '
                       r'teacher has 5 level\(s\) \(0: stride 4, 48 ch, .*4: stride 64, 48 ch; '
                       r'valid: -5\.\.4\)'):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels=[dict(student=0, teacher=0),
                                                      dict(student=1, teacher=7)])
    with pytest.raises(ValueError, match=r'mimic_levels\[0\]: student level 1 \(stride 8, 32 '
                       r'channels\) at input scale 1 with a x1 connector has stride 8 in the '
                       r"teacher's pixels, but teacher level 2 has stride 16 \(48 channels\)"):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels=[dict(student=1, teacher=2)])
    with pytest.raises(ValueError, match=r"mimic_levels='auto': student_input_scale=0.25 "
                       r'leaves no pair.*Student levels: 0: stride 16, 32 ch; teacher levels: '
                       r'0: stride 16, 64 ch'):
        # single-level networks at 16: at scale 0.25 the student's 16 is 64 in the teacher's
        build_distiller(teacher_ckpt, mimic_levels='auto', student_input_scale=0.25,
                        connector=dict(type='Deconv2xConnector'))

    @MODELS.register_module(force=True)
    class DroppingFPN(MODELS.get('FPN')):
        def forward(self, inputs):
            return super().forward(inputs)[:-1]

    bad = fpn_teacher()
    bad.neck.type = 'DroppingFPN'
    with pytest.raises(ValueError, match=r'the teacher neck DroppingFPN has num_outs=5 in its '
                       r'config but extract_feat returns 4 level\(s\) \(0: stride 4, 48 ch'):
        MODELS.build(dict(type='FeatureMimicDistiller', student=fpn_student(), teacher=bad,
                          teacher_ckpt=fpn_teacher_ckpt, mimic_levels='auto'))
    with pytest.raises(ValueError, match='level_rule=5 is out of range: there are 5 mimic'):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', level_rule=5)
    with pytest.raises(ValueError, match='mimic_levels gives the level pairs; student_feature=0'):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', student_feature=0)
    with pytest.raises(ValueError, match='lists a student level twice'):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels=[dict(student=0, teacher=0),
                                                      dict(student=-5, teacher=0)])
    with pytest.raises(ValueError, match=r'mimic_levels\[0\] \(student level 0, 32 channels -> '
                       r'teacher level 0, 48 channels\): without a connector the channels'):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto', connector=None)
    with pytest.raises(ValueError, match="mimic_input 'images'"):
        fpn_distiller(fpn_teacher_ckpt, mimic_levels='auto',
                      mimic_loss=dict(type='WholeFeatureL2Loss'))


def test_no_connector_where_channels_agree(tmp_path):
    """connector=None: the pairs compare the maps as they are (same channels), no parameters."""
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'same.pth')
    torch.save({'state_dict': MODELS.build(fpn_student()).state_dict(), 'meta': {}}, ckpt)
    model = MODELS.build(dict(type='FeatureMimicDistiller', student=fpn_student(),
                              teacher=fpn_student(), teacher_ckpt=ckpt, mimic_levels='auto',
                              connector=None))
    assert not any(k.startswith('connectors.') for k in model.state_dict())
    assert [p['connector_type'] for p in model.mimic_pairs] == ['Identity'] * 5
    inputs, samples = make_batch(num_imgs=1, h=128, w=128)
    assert torch.isfinite(model.loss(inputs, samples)['loss_mimic'])


def _retinanet_teacher():
    """mmdet's RetinaNet (P3-P7, a one-stage teacher) with the student's tiny trunk."""
    import os.path as osp

    import mmdet
    student = fpn_student()
    model = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                                     'retinanet', 'retinanet_r50_fpn_1x_coco.py')).model
    model.backbone = copy.deepcopy(student.backbone)
    model.neck.in_channels, model.neck.out_channels = [16, 32, 64, 128], 32
    model.bbox_head.in_channels = model.bbox_head.feat_channels = 32
    model.bbox_head.stacked_convs = 1
    model.data_preprocessor = student.data_preprocessor
    return model


def _rpn_teacher():
    """The tiny single-level RPN teacher (stride 16), normalising as the FPN student does."""
    from mmmimic.testing.distill import TEACHER_CFG
    model = Config.fromfile(TEACHER_CFG).model
    model.data_preprocessor = fpn_student().data_preprocessor
    return model


@pytest.mark.parametrize('make_teacher,pairs', [
    (_retinanet_teacher, [(1, 0), (2, 1), (3, 2), (4, 3)]),  # P3..P6 <-> RetinaNet P3..P6
    (_rpn_teacher, [(2, 0)]),  # the student's P4 <-> the single stride-16 map
])
def test_teachers_of_other_families_pair_by_stride(make_teacher, pairs, tmp_path):
    teacher = make_teacher()
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher).state_dict(), 'meta': {}}, ckpt)
    model = MODELS.build(dict(type='FeatureMimicDistiller', student=fpn_student(),
                              teacher=teacher, teacher_ckpt=ckpt, mimic_levels='auto'))
    assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == pairs
    assert all(p['student_stride'] == p['teacher_stride'] for p in model.mimic_pairs)
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    loss = model.loss(inputs, samples)['loss_mimic']
    assert torch.isfinite(loss) and loss > 0
