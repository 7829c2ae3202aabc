"""Position-sensitive RoI pooling (Dai et al., R-FCN, NIPS 2016) in vectorised PyTorch.

mmcv has no PS-RoI op. This one computes every bin of every RoI at once from a summed-area table
(integral image) of the score maps: a bin's sum is four look-ups, so there is no Python loop over
RoIs, classes or bins, autograd gives the exact gradient (the backward of a gather plus a cumsum),
and it runs on any device torch runs on.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS


def ps_roi_bin_edges(rois: Tensor, output_size: int, spatial_scale: float, height: int,
                     width: int):
    """Integer bin edges of every RoI on the feature map (the R-FCN Caffe rule).

    A RoI ``(x1, y1, x2, y2)`` in image pixels covers ``[x1 * s, x2 * s)`` on the map
    (``s = spatial_scale``), at least 0.1 cells wide; bin ``j`` of ``k`` spans
    ``[floor(x1 * s + j * w / k), ceil(x1 * s + (j + 1) * w / k))``, clipped to the map.

    Args:
        rois: (N, 5) ``[batch_index, x1, y1, x2, y2]``.
        output_size: k, bins per side.
        spatial_scale: 1 / feature stride.
        height, width: map size.

    Returns:
        tuple[Tensor]: ``y_start, y_end, x_start, x_end``, each (N, k), int64.
    """
    grid = torch.arange(output_size, device=rois.device, dtype=rois.dtype)
    edges = []
    for lo, hi, size in ((rois[:, 2], rois[:, 4], height), (rois[:, 1], rois[:, 3], width)):
        start = lo * spatial_scale
        bin_size = ((hi - lo) * spatial_scale).clamp(min=0.1) / output_size
        first = torch.floor(start[:, None] + grid * bin_size[:, None])
        last = torch.ceil(start[:, None] + (grid + 1) * bin_size[:, None])
        edges += [first.clamp(0, size).long(), last.clamp(0, size).long()]
    return tuple(edges)


def ps_roi_pool(score_maps: Tensor,
                rois: Tensor,
                output_size: int = 7,
                spatial_scale: float = 1 / 16) -> Tensor:
    """Position-sensitive RoI average pooling.

    Bin ``(i, j)`` of output channel ``c`` averages input channel ``(c * k + i) * k + j`` (the
    R-FCN layout: ``k * k`` maps per output channel, row-major bins) over the bin's cells;
    an empty bin (outside the map) is 0.

    Args:
        score_maps: (B, C * k * k, H, W).
        rois: (N, 5) ``[batch_index, x1, y1, x2, y2]`` in input-image pixels.
        output_size: k, bins per side.
        spatial_scale: 1 / stride of ``score_maps``.

    Returns:
        Tensor: (N, C, k, k), the pooled bins (``.mean((2, 3))`` is R-FCN's average voting).
    """
    if score_maps.dim() != 4:
        raise ValueError(f'score_maps must be (B, C*k*k, H, W), got {tuple(score_maps.shape)}')
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(f'rois must be (N, 5) [batch_index, x1, y1, x2, y2], '
                         f'got {tuple(rois.shape)}')
    batch, channels, height, width = score_maps.shape
    k = output_size
    if channels % (k * k) != 0:
        raise ValueError(f'score_maps has {channels} channels, not a multiple of '
                         f'output_size**2 = {k * k}')
    out_channels = channels // (k * k)

    # Summed-area table with a zero first row/column; float64 keeps the four-term difference
    # exact to ~1e-12 even for large maps and activations.
    acc_dtype = torch.float64 if score_maps.device.type != 'mps' else torch.float32
    integral = F.pad(score_maps.to(acc_dtype).cumsum(2).cumsum(3), (1, 0, 1, 0))

    rois = rois.detach().to(torch.float32 if acc_dtype == torch.float32 else torch.float64)
    y0, y1, x0, x1 = ps_roi_bin_edges(rois, k, spatial_scale, height, width)
    b = rois[:, 0].long().view(-1, 1, 1, 1)
    ch = torch.arange(channels, device=score_maps.device).view(1, out_channels, k, k)
    y0, y1 = y0.view(-1, 1, k, 1), y1.view(-1, 1, k, 1)
    x0, x1 = x0.view(-1, 1, 1, k), x1.view(-1, 1, 1, k)
    bin_sum = (integral[b, ch, y1, x1] - integral[b, ch, y0, x1] - integral[b, ch, y1, x0] +
               integral[b, ch, y0, x0])
    area = ((y1 - y0) * (x1 - x0)).to(acc_dtype)
    pooled = torch.where(area > 0, bin_sum / area.clamp(min=1), bin_sum.new_zeros(()))
    return pooled.to(score_maps.dtype)


@MODELS.register_module()
class PSRoIPool(nn.Module):
    """Module form of :func:`ps_roi_pool`.

    Args:
        output_size: k, bins per side.
        spatial_scale: 1 / stride of the score maps.
    """

    def __init__(self, output_size: int = 7, spatial_scale: float = 1 / 16) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, score_maps: Tensor, rois: Tensor) -> Tensor:
        """Pool (N, C, k, k) bins; see :func:`ps_roi_pool`."""
        return ps_roi_pool(score_maps, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}, spatial_scale={self.spatial_scale}'
