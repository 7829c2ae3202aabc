"""Connectors (the paper's regression layer r): shapes, scale factors and the channel check."""
import pytest
import torch

import mmmimic  # noqa: F401
from mmdet.registry import MODELS


def test_conv1x1_connector_maps_channels_without_activation():
    conn = MODELS.build(dict(type='mmdet.Conv1x1Connector', in_channels=8, out_channels=16))
    x = torch.randn(2, 8, 5, 7)
    y = conn(x)
    assert y.shape == (2, 16, 5, 7)
    assert (y < 0).any()  # no ReLU: teacher features may be negative
    assert conn.scale_factor == 1


def test_deconv2x_connector_doubles_resolution():
    conn = MODELS.build(dict(type='mmdet.Deconv2xConnector', in_channels=8, out_channels=16))
    assert conn(torch.randn(1, 8, 5, 7)).shape == (1, 16, 10, 14)
    assert conn.scale_factor == 2


def test_identity_connector():
    conn = MODELS.build(dict(type='mmdet.IdentityConnector', in_channels=8))
    x = torch.randn(1, 8, 3, 3)
    assert conn(x) is x
    with pytest.raises(ValueError, match='8 student channels to 16 teacher'):
        MODELS.build(dict(type='mmdet.IdentityConnector', in_channels=8, out_channels=16))


def test_check_channels_names_both_counts():
    conn = MODELS.build(dict(type='mmdet.Conv1x1Connector', in_channels=8, out_channels=16))
    conn.check_channels(8, 16)
    with pytest.raises(ValueError, match='student map has 32 channels and the teacher map has '
                       '64 channels'):
        conn.check_channels(32, 64)
