"""The exportable building blocks equal the mmdet/mmcv/mmmimic code they replace."""
import numpy as np
import pytest
import torch
from deploy_utils import SKIP_REASON
from mmcv.ops import batched_nms, nms

pytest.importorskip('onnx', reason=SKIP_REASON)
ort = pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox  # noqa: E402
from mmmimic.deployment.graph import (batched_nms_indices, decode_deltas, nms_indices,  # noqa: E402
                                      ps_roi_pool_gather)
from mmmimic.models.roi_heads.ps_roi_pool import ps_roi_pool  # noqa: E402


def _boxes(n, gen, size=100.0):
    xy = torch.rand(n, 2, generator=gen) * size
    wh = torch.rand(n, 2, generator=gen) * size / 3 + 0.5
    return torch.cat([xy, xy + wh], dim=1)


def test_ps_roi_pool_gather_equals_ps_roi_pool():
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 3 * 7 * 7, 9, 13, generator=gen) * 10
    rois = torch.cat([
        torch.randint(0, 2, (40, 1), generator=gen).float(),
        _boxes(40, gen, size=220.0) - 10  # partly outside the 13x9 map at stride 16
    ], dim=1)
    rois = torch.cat([rois, torch.tensor([[0, 5., 5., 5., 5.], [1, 300., 300., 320., 330.]])])
    expected = ps_roi_pool(maps, rois, 7, 1 / 16)
    got = ps_roi_pool_gather(maps, rois, 7, 1 / 16)
    assert got.shape == (42, 3, 7, 7)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert got[-1].abs().sum() == 0  # a RoI off the map: empty bins are 0


def test_decode_deltas_equals_delta2bbox():
    gen = torch.Generator().manual_seed(1)
    rois = _boxes(50, gen)
    deltas = torch.randn(50, 8, generator=gen) * 3  # two classes; some hit wh_ratio_clip
    means, stds = (0., 0.1, 0., 0.), (0.1, 0.1, 0.2, 0.2)
    expected = delta2bbox(rois, deltas, means, stds, max_shape=(60.5, 80))
    got = decode_deltas(rois, deltas, means, stds, torch.tensor([60.5, 80.]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert got[:, 0::2].max() <= 80 and got[:, 1::2].max() <= 60.5 and got.min() >= 0


def test_batched_nms_indices_equals_mmcv_batched_nms():
    gen = torch.Generator().manual_seed(2)
    boxes = _boxes(300, gen)
    scores = torch.rand(300, generator=gen)
    idxs = torch.randint(0, 3, (300, ), generator=gen)
    dets, keep = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    got = batched_nms_indices(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    assert torch.equal(got, keep)
    assert len(set(idxs[got].tolist())) == 3  # boxes of other indices did not suppress


def test_exported_nms_equals_mmcv(tmp_path):

    class NMS(torch.nn.Module):

        def forward(self, boxes, scores):
            return nms_indices(boxes, scores, 0.6)

    gen = torch.Generator().manual_seed(3)
    boxes, scores = _boxes(200, gen), torch.rand(200, generator=gen)
    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(NMS(), (boxes, scores), path, dynamo=False, opset_version=17,
                      input_names=['boxes', 'scores'], output_names=['keep'],
                      dynamic_axes={'boxes': {0: 'n'}, 'scores': {0: 'n'}, 'keep': {0: 'k'}})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for n in (200, 37, 1):
        b, s = _boxes(n, gen), torch.rand(n, generator=gen)
        (keep, ) = session.run(None, {'boxes': b.numpy(), 'scores': s.numpy()})
        assert np.array_equal(keep, nms(b, s, 0.6)[1].numpy())


@pytest.mark.parametrize('nms_cfg, message', [
    (dict(type='soft_nms', iou_threshold=0.5), "nms type 'soft_nms'"),
    (dict(type='nms', iou_threshold=0.5, offset=1), r"nms options \{'offset': 1\}"),
])
def test_unsupported_nms_settings(nms_cfg, message):
    from mmmimic.deployment import NoOnnxRouteError
    boxes = torch.tensor([[0., 0., 10., 10.]])
    with pytest.raises(NoOnnxRouteError, match=message):
        batched_nms_indices(boxes, torch.ones(1), torch.zeros(1, dtype=torch.long), nms_cfg)


def test_capped_nms_equals_the_first_kept_boxes(tmp_path):
    """nms_indices(max_num=k): eager and onnxruntime give mmcv's first k kept indices."""

    class CappedNMS(torch.nn.Module):

        def forward(self, boxes, scores):
            return nms_indices(boxes, scores, 0.5, max_num=7)

    gen = torch.Generator().manual_seed(4)
    boxes, scores = _boxes(300, gen), torch.rand(300, generator=gen)
    path = str(tmp_path / 'capped.onnx')
    torch.onnx.export(CappedNMS(), (boxes, scores), path, dynamo=False, opset_version=17,
                      input_names=['boxes', 'scores'], output_names=['keep'],
                      dynamic_axes={'boxes': {0: 'n'}, 'scores': {0: 'n'}, 'keep': {0: 'k'}})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for n in (300, 40, 5):
        b, s = _boxes(n, gen), torch.rand(n, generator=gen)
        full = nms(b, s, 0.5)[1]
        assert len(full) > 7 or n == 5
        (keep, ) = session.run(None, {'boxes': b.numpy(), 'scores': s.numpy()})
        assert np.array_equal(keep, full[:7].numpy())
        assert torch.equal(nms_indices(b, s, 0.5, max_num=7), full[:7])
        assert torch.equal(nms_indices(b, s, 0.5), full)


def _nms_caps(onnx_file):
    """The max_output_boxes_per_class of every NonMaxSuppression node of an exported graph."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(onnx_file)
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
              for n in model.graph.node if n.op_type == 'Constant'}
    consts.update({t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    return [int(consts[n.input[2]].reshape(-1)[0]) for n in model.graph.node
            if n.op_type == 'NonMaxSuppression']


@pytest.mark.parametrize('kind', ['rpn', 'rfcn', 'retinanet'])
def test_exported_nms_stops_at_max_per_img(kind, reference, tmp_path):
    """The graph's NMS stops after the max_per_img boxes predict keeps (cap_nms=False: the
    uncapped NMS of the speed comparison)."""
    from mmmimic.deployment import export_onnx
    model, config, ckpt = reference(kind)
    head = model.rpn_head if kind == 'rfcn' else model.bbox_head
    caps = [head.test_cfg.max_per_img]
    if kind == 'rfcn':
        caps.append(model.roi_head.test_cfg.max_per_img)
    assert all(0 < c < 2**31 - 1 for c in caps)
    capped, uncapped = str(tmp_path / 'capped.onnx'), str(tmp_path / 'uncapped.onnx')
    assert export_onnx(config, ckpt, capped, shape=(64, 64))['cap_nms'] is True
    export_onnx(config, ckpt, uncapped, shape=(64, 64), cap_nms=False)
    assert _nms_caps(capped) == caps
    assert _nms_caps(uncapped) == [2**31 - 1] * len(caps)


@pytest.mark.parametrize('size', [(1, 1), (3, 4), (7, 9)])
def test_fused_deconv_conv_equals_the_two_layers(size, tmp_path):
    """FusedDeconvConv = conv3x3(deconv(x)), borders included, eager and in onnxruntime."""
    from mmmimic.deployment.graph import FusedDeconvConv
    from mmmimic.models.layers import Deconv2x
    torch.manual_seed(5)
    deconv, conv = Deconv2x(16, 12), torch.nn.Conv2d(12, 10, 3, padding=1)
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        expected = conv(deconv(x))
        fused = FusedDeconvConv(deconv, conv)
        got = fused(x)
    assert got.shape == (2, 10, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    # the border rows/columns need the correction: without it they differ
    assert not torch.allclose(_composite_without_border_correction(fused, x), expected, atol=1e-3)
    path = str(tmp_path / 'fused.onnx')
    torch.onnx.export(fused, (x, ), path, dynamo=False, opset_version=17, input_names=['x'],
                      output_names=['y'], dynamic_axes={'x': {2: 'h', 3: 'w'}})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in (size, (5, 2)):
        xs = torch.randn(2, 16, *shape)
        (y, ) = session.run(None, {'x': xs.numpy()})
        np.testing.assert_allclose(y, conv(deconv(xs)).detach().numpy(), atol=2e-6, rtol=0)


def _composite_without_border_correction(fused, x):
    """The fused layer without its border correction (what a naive fusion computes)."""
    import torch.nn.functional as F
    with torch.no_grad():
        out = F.pixel_shuffle(F.conv2d(x, fused.weight, padding=1), 2)
        return out + F.conv2d(torch.ones_like(out[:1, :1]), fused.bias_taps, padding=1) + \
            fused.bias


def test_cross_scale_rpn_exports_with_the_fused_deconv(reference, tmp_path):
    """The cross-scale student's graph has no 4x4 ConvTranspose (fused); fuse_deconv=False
    keeps it; both give the same detections."""
    import onnx

    from deploy_utils import compare, frames, preprocess, torch_predict
    from mmmimic.deployment import OnnxDetector, export_onnx
    model, config, ckpt = reference('cross_scale')
    paths = {}
    for fuse in (True, False):
        paths[fuse] = str(tmp_path / f'fuse_{fuse}.onnx')
        meta = export_onnx(config, ckpt, paths[fuse], shape=(96, 128), fuse_deconv=fuse)
        assert meta['fused_deconv'] is fuse
        kernels = [tuple(a.ints) for n in onnx.load(paths[fuse]).graph.node
                   if n.op_type == 'ConvTranspose' for a in n.attribute if a.name ==
                   'kernel_shape']
        assert ((4, 4) in kernels) is not fuse, kernels
    frame = frames('scene', (96, 128), seed=1)[0]
    preds = [OnnxDetector(paths[f], device='cpu').predict(
        *preprocess(model, frame).values())[0].pred_instances for f in (True, False)]
    reference_pred = torch_predict(model, preprocess(model, frame))
    for pred in preds:
        compare(pred, reference_pred)
    _, plain_config, plain_ckpt = reference('rpn')  # no deconv neck: nothing to fuse
    assert export_onnx(plain_config, plain_ckpt, str(tmp_path / 'rpn.onnx'),
                       shape=(64, 64))['fused_deconv'] is False


def test_decode_distances_equals_distance2bbox():
    from mmdet.structures.bbox import distance2bbox

    from mmmimic.deployment.ops import decode_distances
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(60, 2, generator=gen) * 100
    distances = torch.rand(60, 4, generator=gen) * 40
    expected = distance2bbox(points, distances, max_shape=(60.5, 80))
    got = decode_distances(points, distances, torch.tensor([60.5, 80.]))
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert got[:, 0::2].max() == 80 and got[:, 1::2].max() == 60.5 and got.min() == 0


def test_extract_roi_feats_equals_single_roi_extractor_on_a_pyramid(tmp_path):
    """Multi-level RoIAlign (finest_scale level rule, scatter back) equals mmdet's
    SingleRoIExtractor, eagerly and in onnxruntime, with RoIs on all four levels and with
    RoIs on one level only (three empty levels) in the same dynamic graph."""
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    from mmmimic.deployment.ops import extract_roi_feats
    extractor = SingleRoIExtractor(dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                   out_channels=8, featmap_strides=[4, 8, 16, 32]).eval()
    gen = torch.Generator().manual_seed(4)
    feats = [torch.randn(1, 8, 128 // s, 160 // s, generator=gen) for s in (4, 8, 16, 32)]
    xy = torch.rand(40, 2, generator=gen) * 60
    wh = torch.cat([torch.full((10, 2), v) for v in (30., 150., 250., 500.)])  # levels 0..3
    rois = torch.cat([torch.zeros(40, 1), xy, xy + wh], dim=1)
    assert set(extractor.map_roi_levels(rois, 4).tolist()) == {0, 1, 2, 3}

    class Extract(torch.nn.Module):

        def forward(self, f0, f1, f2, f3, rois):
            return extract_roi_feats(extractor, [f0, f1, f2, f3], rois)

    with torch.no_grad():
        torch.testing.assert_close(extract_roi_feats(extractor, feats, rois),
                                   extractor(feats, rois), atol=0, rtol=0)
        path = str(tmp_path / 'extract.onnx')
        torch.onnx.export(Extract(), (*feats, rois), path, dynamo=False, opset_version=17,
                          input_names=['f0', 'f1', 'f2', 'f3', 'rois'], output_names=['out'],
                          dynamic_axes={'rois': {0: 'n'}})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for part in (rois, rois[:10]):  # all levels; level 0 only
        inputs = {f'f{i}': f.numpy() for i, f in enumerate(feats)}
        (got, ) = session.run(None, {**inputs, 'rois': part.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(got, extractor(feats, part).numpy(), atol=1e-5, rtol=0)
