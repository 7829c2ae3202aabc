"""Feature-mimic losses of Li, Jin, Yan (CVPR 2017): Eq. 4, Eq. 3 and whole-map regression.

All three compare a student map ``pred`` (already passed through the connector, so it has the
teacher's channels and resolution) with the teacher map ``target``, both ``(B, C, H, W)``.

Box -> feature-cell mapping (used by Eq. 4 and the image-masked whole-map loss)
------------------------------------------------------------------------------
A map of stride ``s`` has cell ``j`` covering input pixels ``[j*s, (j+1)*s)`` (the receptive-field
centre convention of mmdet's anchor generator with ``center_offset=0``). A box
``(x1, y1, x2, y2)`` in input-pixel coordinates (the padded batch the network saw) is cropped to
**every cell it overlaps**::

    col_start = floor(x1 / s)          col_end = ceil(x2 / s)        (end exclusive)
    row_start = floor(y1 / s)          row_end = ceil(y2 / s)

then clamped to the map (``0 <= start <= W - 1``, ``start + 1 <= end <= W``), so a box at the
image border keeps the border cells and a box smaller than one cell (or of zero size) still crops
the one cell that contains it. Each RoI thus has its own crop size ``h_i x w_i`` and
``m_i = C * h_i * w_i``.
"""
from typing import Optional, Tuple

import torch
from mmcv.ops import roi_align
from torch import Tensor

from mmdet.registry import MODELS
from .base_mimic_loss import BaseMimicLoss


def roi_cell_ranges(rois: Tensor, stride: float, feat_size: Tuple[int, int]) -> Tensor:
    """Feature cells covered by each RoI on a map of the given stride (see module docstring).

    Args:
        rois: ``(N, 5)`` rows ``(batch_index, x1, y1, x2, y2)`` in input-pixel coordinates.
        stride: the map's stride in input pixels.
        feat_size: ``(H, W)`` of the map.

    Returns:
        ``(N, 4)`` long tensor ``(col_start, row_start, col_end, row_end)``, ends exclusive.
    """
    h, w = feat_size
    boxes = rois[:, 1:5].detach() / stride
    starts = torch.floor(boxes[:, :2]).long()
    ends = torch.ceil(boxes[:, 2:]).long()
    limits = rois.new_tensor([w, h]).long()
    starts = torch.minimum(starts.clamp(min=0), limits - 1)
    ends = torch.minimum(torch.maximum(ends, starts + 1), limits)
    return torch.cat([starts, ends], dim=1)


def roi_weight_map(rois: Tensor, roi_weights: Tensor, stride: float,
                   feat_shape: Tuple[int, int, int]) -> Tensor:
    """Sum of the RoIs' weights over the cells each RoI covers.

    ``W[b, y, x] = sum_{i: image(i) = b, (y, x) in cells(i)} roi_weights[i]``, built without a
    loop over RoIs as ``(image one-hot * weight) x row-indicator x column-indicator``.

    Args:
        rois: ``(N, 5)`` RoIs ``(batch_index, x1, y1, x2, y2)``.
        roi_weights: ``(N, )`` weight of each RoI.
        stride: map stride in input pixels.
        feat_shape: ``(B, H, W)``.

    Returns:
        ``(B, H, W)`` weight map with ``roi_weights``' dtype.
    """
    num_imgs, h, w = feat_shape
    cells = roi_cell_ranges(rois, stride, (h, w))
    dtype, device = roi_weights.dtype, roi_weights.device
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    rows = ((ys >= cells[:, 1:2]) & (ys < cells[:, 3:4])).to(dtype)  # (N, H)
    cols = ((xs >= cells[:, 0:1]) & (xs < cells[:, 2:3])).to(dtype)  # (N, W)
    img_inds = rois[:, 0].long()
    per_image = torch.zeros(num_imgs, rois.size(0), dtype=dtype, device=device)
    per_image[img_inds, torch.arange(rois.size(0), device=device)] = roi_weights
    return torch.einsum('bn,nh,nw->bhw', per_image, rows, cols)


def proposal_sampled_l2_loss(pred: Tensor, target: Tensor, rois: Tensor,
                             stride: float) -> Tensor:
    """Eq. 4: ``1/(2N) * sum_i 1/m_i * ||u_i - r(v_i)||^2`` over directly cropped RoI features.

    Because every term is a sum of squared differences over a rectangle of cells, the whole loss
    is one weighted sum over the map with the per-cell weight
    ``W = sum_{i covering the cell} 1 / (2 N m_i)`` (:func:`roi_weight_map`): exact, no loop.

    Args:
        pred: student map after the connector, ``(B, C, H, W)``.
        target: teacher map, same shape.
        rois: ``(N, 5)`` sampled RoIs in input pixels of the map's input.
        stride: stride of both maps.

    Returns:
        scalar loss (``pred.sum() * 0`` when there are no RoIs).
    """
    if rois.numel() == 0:
        return pred.sum() * 0
    assert pred.shape == target.shape, \
        f'student map {tuple(pred.shape)} and teacher map {tuple(target.shape)} differ'
    num_imgs, channels, h, w = pred.shape
    cells = roi_cell_ranges(rois, stride, (h, w))
    num_elems = channels * (cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])
    roi_weights = 1.0 / (2.0 * rois.size(0) * num_elems.to(pred.dtype))
    weights = roi_weight_map(rois, roi_weights, stride, (num_imgs, h, w))
    # channels first, then one (B, H, W) weighted sum: fewer passes over the big map
    return ((pred - target).pow(2).sum(1) * weights).sum()


def pooled_feature_l2_loss(pred: Tensor,
                           target: Tensor,
                           rois: Tensor,
                           stride: float,
                           output_size: Tuple[int, int] = (7, 7),
                           sampling_ratio: int = 2,
                           aligned: bool = True) -> Tensor:
    """Eq. 3: ``1/(2N) * sum_i ||u_i - r(v_i)||^2`` on RoIAlign-pooled features (fixed size).

    Args:
        pred: student map after the connector, ``(B, C, H, W)``.
        target: teacher map, same shape.
        rois: ``(N, 5)`` RoIs in input pixels.
        stride: stride of both maps.
        output_size: pooled ``(h, w)``.
        sampling_ratio: RoIAlign samples per bin (mmcv semantics).
        aligned: RoIAlign pixel alignment (mmcv semantics).

    Returns:
        scalar loss.
    """
    if rois.numel() == 0:
        return pred.sum() * 0
    assert pred.shape == target.shape, \
        f'student map {tuple(pred.shape)} and teacher map {tuple(target.shape)} differ'
    rois = rois.detach().to(pred.dtype)
    args = (tuple(output_size), 1.0 / stride, sampling_ratio, 'avg', aligned)
    pooled_pred = roi_align(pred, rois, *args)
    pooled_target = roi_align(target, rois, *args)
    return (pooled_pred - pooled_target).pow(2).sum() / (2 * rois.size(0))


def whole_feature_l2_loss(pred: Tensor,
                          target: Tensor,
                          image_rois: Optional[Tensor] = None,
                          stride: Optional[float] = None) -> Tensor:
    """Whole-map regression (the Table 4 baseline): ``1/(2B) * sum_b 1/m_b ||U_b - r(V_b)||^2``.

    Args:
        pred: student map after the connector, ``(B, C, H, W)``.
        target: teacher map, same shape.
        image_rois: optional ``(B, 5)`` box of each image's valid (unpadded) region; then only
            those cells count, each image normalised by its own element count (Eq. 4 with one RoI
            per image). Without it the whole padded map counts.
        stride: map stride, needed with ``image_rois``.

    Returns:
        scalar loss.
    """
    if pred.numel() == 0:
        return pred.sum() * 0
    if image_rois is not None:
        return proposal_sampled_l2_loss(pred, target, image_rois, stride)
    assert pred.shape == target.shape, \
        f'student map {tuple(pred.shape)} and teacher map {tuple(target.shape)} differ'
    return 0.5 * (pred - target).pow(2).mean()


@MODELS.register_module()
class ProposalSampledL2Loss(BaseMimicLoss):
    """Eq. 4 of the paper, see :func:`proposal_sampled_l2_loss`.

    Args:
        loss_weight: lambda_1 of the paper (1 with this normalisation).
    """

    mimic_input = 'rois'

    def forward(self, pred: Tensor, target: Tensor, rois: Tensor, stride: float) -> Tensor:
        """Args: see :func:`proposal_sampled_l2_loss`. Returns: weighted scalar loss."""
        return self.loss_weight * proposal_sampled_l2_loss(pred, target, rois, stride)


@MODELS.register_module()
class PooledFeatureL2Loss(BaseMimicLoss):
    """Eq. 3 of the paper (RoIAlign-pooled crops), see :func:`pooled_feature_l2_loss`.

    Args:
        loss_weight: weight of the loss.
        output_size: pooled size.
        sampling_ratio: RoIAlign samples per bin.
        aligned: RoIAlign alignment.
    """

    mimic_input = 'rois'

    def __init__(self,
                 loss_weight: float = 1.0,
                 output_size: Tuple[int, int] = (7, 7),
                 sampling_ratio: int = 2,
                 aligned: bool = True) -> None:
        super().__init__(loss_weight)
        self.output_size = tuple(output_size)
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, pred: Tensor, target: Tensor, rois: Tensor, stride: float) -> Tensor:
        """Args: see :func:`pooled_feature_l2_loss`. Returns: weighted scalar loss."""
        return self.loss_weight * pooled_feature_l2_loss(
            pred, target, rois, stride, self.output_size, self.sampling_ratio, self.aligned)


@MODELS.register_module()
class WholeFeatureL2Loss(BaseMimicLoss):
    """Whole feature-map regression (Table 4 baseline), see :func:`whole_feature_l2_loss`.

    Args:
        loss_weight: weight of the loss.
        mask_padding: count only the cells of each image's valid region (not the batch padding).
    """

    mimic_input = 'images'

    def __init__(self, loss_weight: float = 1.0, mask_padding: bool = True) -> None:
        super().__init__(loss_weight)
        self.mask_padding = mask_padding

    def forward(self,
                pred: Tensor,
                target: Tensor,
                image_rois: Optional[Tensor] = None,
                stride: Optional[float] = None) -> Tensor:
        """Args: see :func:`whole_feature_l2_loss`. Returns: weighted scalar loss."""
        if not self.mask_padding:
            image_rois = None
        return self.loss_weight * whole_feature_l2_loss(pred, target, image_rois, stride)
