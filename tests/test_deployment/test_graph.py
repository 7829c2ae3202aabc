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
