"""Cross-scale mimic (paper Sec. 3.5): half-size student input, deconv, exact coordinates."""
import os.path as osp

import pytest
import torch
from mmmimic.testing.distill import build_distiller, make_batch
from mmengine.structures import InstanceData

from mmdet.structures.bbox import HorizontalBoxes
from mmmimic.models.distillers import resize_batch
from mmmimic.models.losses import roi_cell_ranges

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')
DECONV_MIMIC_CFG = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'cross_scale',
                            'rpn_r18-w8-deconv_mimic_tiny.py')


def build_cross_scale(teacher_ckpt, variant):
    if variant == 'deconv-neck':  # the paper's: the deconv is part of the student
        return build_distiller(teacher_ckpt, config=DECONV_MIMIC_CFG)
    # the deconv only in the mimic path (stride-16 student heads)
    return build_distiller(teacher_ckpt, student_input_scale=0.5,
                           connector=dict(type='Deconv2xConnector'))


def test_resize_batch_scales_images_boxes_and_meta():
    inputs, samples = make_batch(h=96, w=128)
    samples[0].gt_instances.bboxes = HorizontalBoxes(samples[0].gt_instances.bboxes)
    samples[0].ignored_instances = InstanceData(bboxes=torch.tensor([[2., 4., 6., 8.]]),
                                                labels=torch.tensor([0]))
    samples[0].set_metainfo(dict(scale_factor=(1.5625, 1.5625), img_shape=(90, 125)))
    before = samples[0].gt_instances.bboxes.tensor.clone()
    small, small_samples = resize_batch(inputs, samples, 0.5)
    assert small.shape == (2, 3, 48, 64)
    # bilinear x0.5 = mean of 2x2 blocks
    assert torch.allclose(small, torch.nn.functional.avg_pool2d(inputs, 2), atol=1e-6)
    meta = small_samples[0].metainfo
    assert meta['img_shape'] == (45, 62.5) and meta['pad_shape'] == (48, 64)
    assert meta['batch_input_shape'] == (48, 64)
    assert meta['scale_factor'] == (0.78125, 0.78125)
    assert torch.equal(small_samples[0].gt_instances.bboxes.tensor, before * 0.5)
    assert torch.equal(small_samples[0].ignored_instances.bboxes,
                       torch.tensor([[1., 2., 3., 4.]]))
    assert torch.equal(samples[0].gt_instances.bboxes.tensor, before)  # originals untouched
    with pytest.raises(ValueError, match='97x128'):
        resize_batch(torch.zeros(1, 3, 97, 128), [], 0.5)


@pytest.mark.parametrize('variant', ['deconv-neck', 'deconv-connector'])
def test_student_sees_half_size_and_maps_match(teacher_ckpt, variant):
    model = build_cross_scale(teacher_ckpt, variant)
    assert model.student_input_scale == 0.5
    seen = {}
    extract = model.student.extract_feat

    def recording_extract(x):
        seen['input'] = x.shape
        feats = extract(x)
        seen['map'] = feats[-1].shape
        return feats

    model.student.extract_feat = recording_extract
    connector = model.connector.forward
    model.connector.forward = lambda x: seen.setdefault('connector', connector(x))
    inputs, samples = make_batch(h=96, w=128)
    losses = model.loss(inputs, samples)
    teacher_map = model.extract_teacher_feat(inputs)[-1]
    assert seen['input'] == (2, 3, 48, 64)
    assert seen['connector'].shape == teacher_map.shape == (2, 64, 6, 8)
    assert seen['map'][-2:] == ((6, 8) if variant == 'deconv-neck' else (3, 4))
    assert losses['loss_mimic'].item() > 0


def test_rois_crop_the_same_cells_of_both_maps(teacher_ckpt):
    """Cropping the student map at its own stride in its own input pixels equals cropping it at
    the teacher's stride with the RoIs mapped to the teacher's pixels (what the loss does)."""
    model = build_cross_scale(teacher_ckpt, 'deconv-neck')
    assert model.student_stride == 8 and model.teacher_stride == 16
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * torch.tensor([64., 48.])
    wh = torch.rand(500, 2, generator=g) * 30
    student_rois = torch.cat([torch.zeros(500, 1), xy, xy + wh], dim=1)
    teacher_rois = model.to_teacher_coords(student_rois)
    assert torch.equal(teacher_rois[:, 1:], student_rois[:, 1:] * 2)
    own = roi_cell_ranges(student_rois, model.student_stride, (6, 8))
    mapped = roi_cell_ranges(teacher_rois, model.teacher_stride, (6, 8))
    assert torch.equal(own, mapped)


@pytest.mark.parametrize('pipeline_scale', [1.0, 0.8])
def test_predictions_come_back_in_original_coordinates(teacher_ckpt, pipeline_scale):
    """The student's boxes on the half image, mapped by mmdet's own rescale (multiply by
    1 / scale_factor) with scale_factor = pipeline scale * 0.5, land in the original image: for
    an unresized pipeline exactly 2x the half-image box."""
    model = build_cross_scale(teacher_ckpt, 'deconv-neck').eval()
    inputs, samples = make_batch(h=96, w=128)
    for s in samples:  # the pipeline resized the original by pipeline_scale to 96x128
        s.set_metainfo(dict(scale_factor=(pipeline_scale, pipeline_scale)))
    with torch.no_grad():
        half_inputs, half_samples = model.student_inputs(inputs, samples)
        on_half = model.student.predict(half_inputs, half_samples, rescale=False)
        results = model.predict(inputs, [s.clone() for s in samples], rescale=True)
        unscaled = model.predict(inputs, [s.clone() for s in samples], rescale=False)
    for half, full, raw in zip(on_half, results, unscaled):
        boxes = half.pred_instances.bboxes
        assert boxes.shape[0] > 0
        assert torch.equal(full.pred_instances.bboxes, boxes * (1 / (pipeline_scale * 0.5)))
        if pipeline_scale == 1.0:
            assert torch.equal(full.pred_instances.bboxes, boxes * 2)
        assert torch.equal(raw.pred_instances.bboxes, boxes * 2)  # the caller's input pixels
        assert full.metainfo['scale_factor'] == (pipeline_scale, pipeline_scale)  # unchanged
        assert full.metainfo['img_shape'] == (96, 128)


def test_cross_scale_needs_matching_strides(teacher_ckpt):
    with pytest.raises(ValueError, match='effective stride 32.0'):
        build_distiller(teacher_ckpt, student_input_scale=0.5)  # no deconv
