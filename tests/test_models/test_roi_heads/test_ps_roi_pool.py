"""Position-sensitive RoI pooling against a direct per-bin loop."""
import math

import pytest
import torch

from mmmimic.models.roi_heads import PSRoIPool, ps_roi_pool


def naive_ps_roi_pool(maps, rois, k, scale):
    """Per-RoI, per-bin loop straight from the R-FCN Caffe kernel (continuous box coordinates)."""
    _, channels, height, width = maps.shape
    out_c = channels // (k * k)
    outs = []
    for roi in rois.tolist():
        b, x1, y1, x2, y2 = roi
        roi_w = max((x2 - x1) * scale, 0.1)
        roi_h = max((y2 - y1) * scale, 0.1)
        out = maps.new_zeros(out_c, k, k)
        for c in range(out_c):
            for i in range(k):
                for j in range(k):
                    hs = min(max(math.floor(y1 * scale + i * roi_h / k), 0), height)
                    he = min(max(math.ceil(y1 * scale + (i + 1) * roi_h / k), 0), height)
                    ws = min(max(math.floor(x1 * scale + j * roi_w / k), 0), width)
                    we = min(max(math.ceil(x1 * scale + (j + 1) * roi_w / k), 0), width)
                    if he <= hs or we <= ws:
                        continue
                    out[c, i, j] = maps[int(b), (c * k + i) * k + j, hs:he, ws:we].mean()
        outs.append(out)
    return torch.stack(outs)


def _rois():
    # In-map, partly outside, tiny (< 1 cell), degenerate (x2 < x1) and fully outside boxes,
    # on both images of the batch.
    return torch.tensor([[0, 3.0, 5.0, 60.0, 90.0], [1, 10.5, 0.0, 40.2, 33.3],
                         [0, -20.0, -8.0, 30.0, 200.0], [1, 50.0, 50.0, 51.0, 52.0],
                         [0, 40.0, 40.0, 30.0, 30.0], [1, 500.0, 500.0, 600.0, 640.0],
                         [1, 0.0, 0.0, 127.0, 95.0]])


@pytest.mark.parametrize('k', [3, 7])
def test_ps_roi_pool_matches_naive_loop(k):
    torch.manual_seed(0)
    scale = 1 / 8
    maps = torch.randn(2, 2 * k * k, 12, 16, dtype=torch.float64, requires_grad=True)
    rois = _rois().double()
    fast = ps_roi_pool(maps, rois, k, scale)
    slow = naive_ps_roi_pool(maps, rois, k, scale)
    assert fast.shape == (len(rois), 2, k, k)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)

    upstream = torch.randn_like(fast)
    grad_fast, = torch.autograd.grad((fast * upstream).sum(), maps)
    grad_slow, = torch.autograd.grad((slow * upstream).sum(), maps)
    torch.testing.assert_close(grad_fast, grad_slow, rtol=1e-9, atol=1e-9)


def test_ps_roi_pool_float32_and_module():
    torch.manual_seed(1)
    maps = (torch.randn(2, 4 * 49, 10, 14) * 50).requires_grad_()
    pooled = PSRoIPool(output_size=7, spatial_scale=1 / 16)(maps, _rois().float())
    assert pooled.dtype == torch.float32 and pooled.shape == (7, 4, 7, 7)
    torch.testing.assert_close(
        pooled, naive_ps_roi_pool(maps.detach(), _rois(), 7, 1 / 16), rtol=1e-5, atol=1e-4)
    pooled.sum().backward()
    assert torch.isfinite(maps.grad).all()


def test_ps_roi_pool_empty_and_errors():
    maps = torch.randn(1, 2 * 49, 4, 4, requires_grad=True)
    empty = ps_roi_pool(maps, torch.zeros(0, 5), 7)
    assert empty.shape == (0, 2, 7, 7)
    empty.sum().backward()  # keeps the graph, zero gradient
    assert maps.grad.abs().sum() == 0
    with pytest.raises(ValueError, match='multiple of output_size'):
        ps_roi_pool(torch.randn(1, 50, 4, 4), torch.zeros(1, 5), 7)
    with pytest.raises(ValueError, match='rois must be'):
        ps_roi_pool(maps, torch.zeros(3, 4), 7)
