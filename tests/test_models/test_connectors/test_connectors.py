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


@pytest.mark.parametrize('cfg,pointwise', [
    (dict(type='mmdet.Conv1x1Connector', in_channels=8, out_channels=16), True),
    (dict(type='mmdet.Conv1x1Connector', in_channels=8, out_channels=16, bias=False,
          act_cfg=dict(type='ReLU')), True),
    (dict(type='mmdet.Conv1x1Connector', in_channels=8, out_channels=16,
          norm_cfg=dict(type='BN')), False),  # batch statistics mix the cells
    (dict(type='mmdet.IdentityConnector', in_channels=8), True),
    (dict(type='mmdet.Deconv2xConnector', in_channels=8, out_channels=16), False),
])
def test_pointwise_connectors_on_chosen_cells_equal_the_whole_map(cfg, pointwise):
    torch.manual_seed(0)
    conn = MODELS.build(cfg)
    assert conn.pointwise == pointwise
    x = torch.randn(2, 8, 5, 7)
    b, y, xs = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 4, 2, 3]), torch.tensor([6, 0, 3, 3])
    if not pointwise:
        with pytest.raises(NotImplementedError, match='not pointwise'):
            conn.forward_cells(x[b, :, y, xs])
        return
    want = conn(x)[b, :, y, xs]
    got = conn.forward_cells(x[b, :, y, xs])
    assert got.shape == (4, conn.out_channels)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
