"""Deconv2x: the exact x2 transposed convolution shared by neck and connector."""
import torch

from mmmimic.models.layers import Deconv2x


def test_deconv2x_doubles_height_and_width_for_any_size():
    layer = Deconv2x(3, 5)
    assert layer.scale_factor == 2
    for h, w in ((1, 1), (5, 7), (6, 8)):
        assert layer(torch.randn(2, 3, h, w)).shape == (2, 5, 2 * h, 2 * w)
    assert Deconv2x(3, 5, bias=False).bias is None


def test_deconv2x_is_a_plain_transposed_conv():
    torch.manual_seed(0)
    layer = Deconv2x(3, 5)
    ref = torch.nn.ConvTranspose2d(3, 5, kernel_size=4, stride=2, padding=1)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(1, 3, 4, 6)
    assert torch.equal(layer(x), ref(x))
