"""Mimic losses: Eq. 4 against its per-RoI oracle, Eq. 3, whole-map and logits mimic."""
import pytest
import torch
from mmcv.ops import roi_align

from mmmimic.models.losses import (PooledFeatureL2Loss, ProposalSampledL2Loss, RPNLogitsL2Loss,
                                   WholeFeatureL2Loss, pooled_feature_l2_loss,
                                   proposal_sampled_l2_loss, roi_cell_ranges, roi_weight_map,
                                   rpn_logits_l2_loss, whole_feature_l2_loss)
from mmmimic.testing.losses import proposal_sampled_l2_loss_reference


def _rois(boxes, img=0):
    boxes = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    return torch.cat([boxes.new_full((len(boxes), 1), img), boxes], 1)


@pytest.mark.parametrize('stride', [16, 8])
def test_roi_cell_ranges(stride):
    s = stride
    # map of a 96 x 128 input: H = 96 / s, W = 128 / s
    feat = (96 // s, 128 // s)
    h, w = feat
    cases = [
        # box exactly one cell
        ([0, 0, s, s], [0, 0, 1, 1]),
        # box straddling a cell boundary covers both cells
        ([s / 2, s / 2, 1.5 * s, 1.5 * s], [0, 0, 2, 2]),
        # box smaller than a cell, inside cell (1, 1): that one cell
        ([s + 1, s + 2, s + 3, s + 4], [1, 1, 2, 2]),
        # zero-size box on a cell corner: the cell starting there
        ([2 * s, 2 * s, 2 * s, 2 * s], [2, 2, 3, 3]),
        # box at the right / bottom image border
        ([128 - 5, 96 - 5, 128, 96], [w - 1, h - 1, w, h]),
        # box crossing the border (clipped) and a negative start
        ([-3, -7, 128 + 20, 96 + 9], [0, 0, w, h]),
        # box entirely beyond the map: the border cell
        ([200, 200, 210, 210], [w - 1, h - 1, w, h]),
    ]
    rois = _rois([c[0] for c in cases])
    cells = roi_cell_ranges(rois, s, feat)
    assert cells.dtype == torch.long
    assert cells.tolist() == [c[1] for c in cases]


def _random_problem(dtype, num_imgs=3, channels=5, h=9, w=13, stride=16, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(num_imgs, channels, h, w, dtype=dtype, generator=g, requires_grad=True)
    target = torch.randn(num_imgs, channels, h, w, dtype=dtype, generator=g)
    size = torch.tensor([w * stride, h * stride], dtype=dtype)
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * size
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * 6 * stride
    wh[:5] = torch.rand(5, 2, generator=g, dtype=dtype) * stride / 3  # smaller than a cell
    boxes = torch.cat([xy - 10, xy + wh], 1)  # some cross the borders
    img = torch.randint(0, num_imgs, (n, 1), generator=g).to(dtype)
    return pred, target, torch.cat([img, boxes], 1)


@pytest.mark.parametrize('stride', [16, 8])
def test_eq4_matches_per_roi_reference_values_and_gradients(stride):
    pred, target, rois = _random_problem(torch.float64, stride=stride)
    loss = proposal_sampled_l2_loss(pred, target, rois, stride)
    grad, = torch.autograd.grad(loss, pred)
    ref = proposal_sampled_l2_loss_reference(pred, target, rois, stride)
    ref_grad, = torch.autograd.grad(ref, pred)
    assert torch.allclose(loss, ref, rtol=0, atol=1e-6)
    assert torch.allclose(grad, ref_grad, rtol=0, atol=1e-6)
    assert abs(loss.item() - ref.item()) < 1e-12  # exact up to float64 rounding

    pred32, target32, rois32 = (t.detach().float() for t in (pred, target, rois))
    pred32.requires_grad_(True)
    loss32 = proposal_sampled_l2_loss(pred32, target32, rois32, stride)
    grad32, = torch.autograd.grad(loss32, pred32)
    assert torch.allclose(loss32.double(), ref, atol=1e-6)
    assert torch.allclose(grad32.double(), ref_grad, atol=1e-6)


def test_eq4_by_hand():
    # one image, C = 2, one RoI of 2 x 1 cells and one of 1 cell, stride 16
    pred = torch.zeros(1, 2, 3, 3, requires_grad=True)
    target = torch.zeros(1, 2, 3, 3)
    target[0, :, 0, 0] = 1.0  # inside both RoIs
    target[0, :, 1, 2] = 3.0  # outside both RoIs
    rois = torch.tensor([[0, 0, 0, 32, 16], [0, 0, 0, 8, 8]], dtype=torch.float)
    # RoI 1: m = 2 * 2 = 4, squared error 2 -> 0.5; RoI 2: m = 2, error 2 -> 1; 1/(2N) = 1/4
    loss = proposal_sampled_l2_loss(pred, target, rois, 16)
    assert loss.item() == pytest.approx((0.5 + 1.0) / 4)
    weights = roi_weight_map(rois, torch.tensor([1.0, 10.0]), 16, (1, 3, 3))
    expected = torch.zeros(1, 3, 3)
    expected[0, 0, 0] = 11
    expected[0, 0, 1] = 1
    assert torch.equal(weights, expected)


def test_empty_inputs_keep_graph_and_give_zero():
    pred = torch.randn(2, 4, 5, 6, requires_grad=True)
    target = torch.randn(2, 4, 5, 6)
    empty = torch.zeros(0, 5)
    for fn in (proposal_sampled_l2_loss, pooled_feature_l2_loss):
        loss = fn(pred, target, empty, 16)
        assert loss.item() == 0 and loss.requires_grad
        loss.backward()
    assert ProposalSampledL2Loss()(pred, target, empty, 16).item() == 0


def test_pooled_eq3_matches_reference():
    pred, target, rois = _random_problem(torch.float32, n=12)
    pred = pred.detach().requires_grad_(True)
    loss = pooled_feature_l2_loss(pred, target, rois.float(), 16, output_size=(3, 3))
    ref = 0
    for roi in rois.float():
        args = ((3, 3), 1 / 16, 2, 'avg', True)
        u = roi_align(target, roi[None], *args)
        v = roi_align(pred, roi[None], *args)
        ref = ref + (u - v).pow(2).sum()
    ref = ref / (2 * len(rois))
    assert torch.allclose(loss, ref, rtol=1e-5)
    loss.backward()
    assert pred.grad.abs().sum() > 0
    module = PooledFeatureL2Loss(loss_weight=0.5, output_size=(3, 3))
    assert torch.allclose(module(pred, target, rois.float(), 16), 0.5 * loss)
    assert pooled_feature_l2_loss(target, target, rois.float(), 16).item() == 0


def test_whole_map_loss():
    pred = torch.randn(2, 3, 4, 5, requires_grad=True)
    target = torch.randn(2, 3, 4, 5)
    assert torch.allclose(whole_feature_l2_loss(pred, target), 0.5 * (pred - target).pow(2).mean())
    # with valid regions: image 0 is 4 x 5 cells at stride 8, image 1 only 2 x 3 (padding)
    image_rois = torch.tensor([[0, 0, 0, 40, 32], [1, 0, 0, 24, 16]], dtype=torch.float)
    diff = (pred - target).pow(2)
    expected = 0.5 * (diff[0].mean() + diff[1, :, :2, :3].mean()) / 2
    assert torch.allclose(whole_feature_l2_loss(pred, target, image_rois, 8), expected)
    module = WholeFeatureL2Loss(loss_weight=2.0)
    assert torch.allclose(module(pred, target, image_rois, 8), 2 * expected)
    unmasked = WholeFeatureL2Loss(mask_padding=False)
    assert torch.allclose(unmasked(pred, target, image_rois, 8),
                          whole_feature_l2_loss(pred, target))


def test_rpn_logits_loss():
    g = torch.Generator().manual_seed(0)
    s_cls = [torch.randn(2, 6, 4, 5, generator=g, requires_grad=True)]
    s_reg = [torch.randn(2, 24, 4, 5, generator=g, requires_grad=True)]
    t_cls = [torch.randn(2, 6, 4, 5, generator=g)]
    t_reg = [torch.randn(2, 24, 4, 5, generator=g)]
    loss = rpn_logits_l2_loss((s_cls, s_reg), (t_cls, t_reg))
    num_anchors = 2 * 6 * 4 * 5
    expected = ((s_cls[0] - t_cls[0]).pow(2).sum() + (s_reg[0] - t_reg[0]).pow(2).sum()) / (
        2 * num_anchors)
    assert torch.allclose(loss, expected)
    assert rpn_logits_l2_loss((t_cls, t_reg), (t_cls, t_reg)).item() == 0
    assert torch.allclose(RPNLogitsL2Loss(loss_weight=3.0)((s_cls, s_reg), (t_cls, t_reg)),
                          3 * expected)
    with pytest.raises(ValueError, match='same anchors'):
        rpn_logits_l2_loss((s_cls, s_reg), ([t_cls[0][:, :3]], t_reg))
