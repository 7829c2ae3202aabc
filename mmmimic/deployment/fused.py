"""The cross-scale students' ``Deconv2xNeck`` and RPN 3x3 conv as one exported layer.

:class:`FusedDeconvConv` computes ``conv3x3(deconv(x))`` exactly (to float32 rounding) at the
cost of the conv alone; :func:`fusable_deconv_rpn` says when a detector's neck and RPN conv can
be fused (see docs/user_guides/deployment.md, "Fused deconv + RPN conv").
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .ops import rpn_head_of


class FusedDeconvConv(nn.Module):
    """``conv3x3(deconv(x))`` (x2 ``Deconv2x`` then a 3x3, padding 1 conv, no activation
    between) as one 3x3 convolution on the small map plus a pixel shuffle.

    Both layers are linear, so their composition is a transposed convolution of ``x`` (kernel
    6, stride 2, padding 2); each of its four output phases is a 3x3 convolution of ``x``,
    computed as one convolution to ``4 x out`` channels and interleaved by ``pixel_shuffle``
    (ONNX ``DepthToSpace``). The composite kernel costs what the 3x3 conv alone costs, so the
    deconv's own multiply-adds are saved (a third of the cross-scale student's RPN at 264
    channels). Exactness at the borders: the 3x3 conv zero-pads the deconv map, while the
    composite would read the deconv's values one pixel outside it; those (one row or column
    per side, computed from the first/last input row or column) are subtracted. The deconv
    bias, inside the map only, is a constant map through the conv's taps (``bias_map``).
    Weights are combined in float64; the result equals the two layers up to float32 rounding.

    Args:
        deconv: the ``ConvTranspose2d`` (kernel 4, stride 2, padding 1).
        conv: the ``Conv2d`` (kernel 3, stride 1, padding 1) reading its output.
    """

    def __init__(self, deconv: nn.ConvTranspose2d, conv: nn.Conv2d) -> None:
        super().__init__()
        wd = deconv.weight.detach().double()  # (in, mid, 4, 4)
        wr = conv.weight.detach().double()  # (out, mid, 3, 3)
        n_in, n_out = wd.shape[0], wr.shape[0]
        composite = wd.new_zeros(n_in, n_out, 6, 6)
        for ky in range(4):
            for kx in range(4):
                for jy in range(3):
                    for jx in range(3):
                        composite[:, :, ky - jy + 2, kx - jx + 2] += \
                            wd[:, :, ky, kx] @ wr[:, :, jy, jx].t()
        # phase (a, b), tap (ty, tx) of a padding-1 conv: kernel index (a + 4 - 2ty, b + 4 - 2tx)
        phases = wd.new_zeros(n_out, 2, 2, n_in, 3, 3)
        for a in range(2):
            for b in range(2):
                for ty in range(3):
                    for tx in range(3):
                        phases[:, a, b, :, ty, tx] = \
                            composite[:, :, a + 4 - 2 * ty, b + 4 - 2 * tx].t()
        self.register_buffer('weight', phases.reshape(n_out * 4, n_in, 3, 3).float())
        bias_d = deconv.bias.detach().double() if deconv.bias is not None else \
            wd.new_zeros(wd.shape[1])
        # the deconv bias through each tap of the conv: a 1-channel conv of the inside mask
        self.register_buffer('bias_taps',
                             torch.einsum('fmyx,m->fyx', wr, bias_d)[:, None].float())
        bias_r = conv.bias.detach() if conv.bias is not None else wr.new_zeros(n_out).float()
        self.register_buffer('bias', bias_r.float().view(1, -1, 1, 1))
        self.register_buffer('deconv_weight', deconv.weight.detach().clone())
        self.register_buffer('conv_weight', conv.weight.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        """``conv(deconv(x))`` for ``x`` (B, in, H, W): (B, out, 2H, 2W)."""
        wd, wr = self.deconv_weight, self.conv_weight
        out = F.pixel_shuffle(F.conv2d(x, self.weight, padding=1), 2)
        inside = torch.ones_like(out[:1, :1])
        out = out + F.conv2d(inside, self.bias_taps, padding=1) + self.bias
        # the deconv's values one pixel outside its map, which the composite read and the
        # zero-padded conv does not: rows (corners included), then columns (inner rows)
        top = F.conv_transpose2d(x[:, :, :1], wd[:, :, :1], stride=(1, 2))
        bottom = F.conv_transpose2d(x[:, :, -1:], wd[:, :, 3:], stride=(1, 2))
        left = F.conv_transpose2d(x[..., :1], wd[..., :1], stride=(2, 1), padding=(1, 0))
        right = F.conv_transpose2d(x[..., -1:], wd[..., 3:], stride=(2, 1), padding=(1, 0))
        out = torch.cat([out[:, :, :1] - F.conv2d(top, wr[:, :, :1]), out[:, :, 1:-1],
                         out[:, :, -1:] - F.conv2d(bottom, wr[:, :, 2:])], dim=2)
        return torch.cat([out[..., :1] - F.conv2d(left, wr[..., :1], padding=(1, 0)),
                          out[..., 1:-1],
                          out[..., -1:] - F.conv2d(right, wr[..., 2:], padding=(1, 0))], dim=3)


def fusable_deconv_rpn(detector: nn.Module) -> bool:
    """Whether ``detector`` is an RPN whose neck is one ``Deconv2xNeck`` (no activation) read
    by a single-conv ``RPNHead``: then :class:`FusedDeconvConv` replaces the two layers."""
    from mmmimic.models.necks import Deconv2xNeck
    neck, head = getattr(detector, 'neck', None), rpn_head_of(detector)
    if not isinstance(neck, Deconv2xNeck) or neck.act is not None:
        return False
    deconv, conv = neck.deconv, getattr(head, 'rpn_conv', None)
    return (getattr(detector, 'roi_head', None) is None and type(conv) is nn.Conv2d and
            tuple(deconv.kernel_size) == (4, 4) and tuple(deconv.stride) == (2, 2) and
            tuple(deconv.padding) == (1, 1) and tuple(deconv.output_padding) == (0, 0) and
            tuple(deconv.dilation) == (1, 1) and deconv.groups == 1 and
            tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1) and
            tuple(conv.padding) == (1, 1) and tuple(conv.dilation) == (1, 1) and
            conv.groups == 1 and conv.padding_mode == 'zeros')
