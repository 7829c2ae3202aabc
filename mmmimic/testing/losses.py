"""Test oracles of the mimic losses: the equations as written, one RoI at a time (slow)."""
from torch import Tensor

from mmmimic.models.losses import roi_cell_ranges


def proposal_sampled_l2_loss_reference(pred: Tensor, target: Tensor, rois: Tensor,
                                       stride: float) -> Tensor:
    """Eq. 4 as written, one RoI at a time: the reference for tests and the benchmark only.

    Args:
        pred: student map after the connector, ``(B, C, H, W)``.
        target: teacher map, same shape.
        rois: ``(N, 5)`` RoIs ``(batch_index, x1, y1, x2, y2)`` in input pixels.
        stride: stride of both maps.

    Returns:
        ``1/(2N) * sum_i 1/m_i * ||u_i - v_i||^2`` over the cells each RoI covers
        (:func:`~mmmimic.models.losses.roi_cell_ranges`); ``pred.sum() * 0`` without RoIs.
    """
    if rois.numel() == 0:
        return pred.sum() * 0
    cells = roi_cell_ranges(rois, stride, pred.shape[-2:]).tolist()
    total = pred.new_zeros(())
    for (x0, y0, x1, y1), b in zip(cells, rois[:, 0].long().tolist()):
        u = target[b, :, y0:y1, x0:x1]
        v = pred[b, :, y0:y1, x0:x1]
        total = total + (u - v).pow(2).sum() / u.numel()
    return total / (2 * len(cells))
