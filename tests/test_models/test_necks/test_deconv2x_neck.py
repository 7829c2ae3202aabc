"""Deconv2xNeck: a neck of its own sharing the Deconv2x layer with Deconv2xConnector; the
state-dict keys of checkpoints written before the move still load strictly."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmmimic  # noqa: F401
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmmimic.models.connectors import BaseConnector, Deconv2xConnector
from mmmimic.models.layers import Deconv2x
from mmmimic.models.necks import Deconv2xNeck

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')
DECONV_STUDENT = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'cross_scale',
                          'rpn_r18-w8-deconv_tiny.py')

register_all_modules()


def test_neck_upsamples_the_last_map_x2():
    neck = MODELS.build(dict(type='Deconv2xNeck', in_channels=8, out_channels=4))
    assert isinstance(neck, Deconv2xNeck) and not isinstance(neck, BaseConnector)
    assert isinstance(neck.deconv, Deconv2x)
    out = neck((torch.randn(1, 3, 10, 14), torch.randn(2, 8, 5, 7)))
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (2, 4, 10, 14)
    relu = MODELS.build(dict(type='Deconv2xNeck', in_channels=8, out_channels=4,
                             act_cfg=dict(type='ReLU')))
    assert (relu((torch.randn(1, 8, 5, 7), ))[0] >= 0).all()


def test_neck_and_connector_share_the_deconv_layer():
    neck = Deconv2xNeck(8, 4)
    conn = Deconv2xConnector(8, 4)
    for layer in (neck.deconv, conn.deconv):
        assert type(layer) is Deconv2x
        assert (layer.kernel_size, layer.stride, layer.padding) == ((4, 4), (2, 2), (1, 1))
    conn.deconv.load_state_dict(neck.deconv.state_dict())
    x = torch.randn(1, 8, 3, 5)
    assert torch.equal(neck((x, ))[0], conn(x))


@pytest.mark.parametrize('act_cfg,keys', [
    (None, ['deconv.weight', 'deconv.bias']),
    (dict(type='PReLU'), ['deconv.weight', 'deconv.bias', 'act.weight']),
])
def test_state_dict_keys_are_those_of_the_old_neck(act_cfg, keys):
    # before the move, Deconv2xNeck subclassed Deconv2xConnector: `deconv` (ConvTranspose2d)
    # and `act` were its only children
    for cls in (Deconv2xNeck, Deconv2xConnector):
        module = cls(8, 4, act_cfg=act_cfg)
        assert list(module.state_dict()) == keys
        assert module.deconv.weight.shape == (8, 4, 4, 4)


def test_a_checkpoint_of_the_old_layout_loads_strictly():
    torch.manual_seed(0)
    student = MODELS.build(Config.fromfile(DECONV_STUDENT).model)
    state = student.state_dict()
    assert [k for k in state if k.startswith('neck.')] == ['neck.deconv.weight',
                                                           'neck.deconv.bias']
    old = {k: torch.randn_like(v) if k.startswith('neck.') else v for k, v in state.items()}
    student.load_state_dict(old, strict=True)
    assert torch.equal(student.neck.deconv.weight, old['neck.deconv.weight'])
