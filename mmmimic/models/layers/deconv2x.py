"""The x2 transposed convolution shared by the cross-scale neck and connector (paper Sec. 3.5)."""
import torch.nn as nn


class Deconv2x(nn.ConvTranspose2d):
    """Transposed convolution that upsamples exactly x2: kernel 4, stride 2, padding 1, so
    ``(H, W) -> (2H, 2W)``; a map of stride ``s`` becomes one of stride ``s / 2``.

    Its parameters are ``weight`` and ``bias`` as in ``nn.ConvTranspose2d``, so a module holding
    it as ``deconv`` has the state-dict keys ``deconv.weight`` / ``deconv.bias``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        bias: whether the deconv has a bias.
    """

    scale_factor = 2

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=bias)
