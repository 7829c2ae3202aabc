"""Inception (GoogLeNet v1) backbone: widths, strides, out_indices and block structure."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmmimic.models.backbones import INCEPTION_BLOCKS, Inception

WIDTHS = (1.0, 0.5, 0.25, 0.125)
ALL_OUT = ('stem', 'inception_3b', 'inception_4d', 'inception_4e', 'inception_5b')


@pytest.mark.parametrize('widen_factor', WIDTHS)
def test_shapes_and_strides_every_width(widen_factor):
    model = MODELS.build(dict(type='Inception', widen_factor=widen_factor, out_indices=ALL_OUT))
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    expected = {'stem': (192, 8), 'inception_3b': (480, 8), 'inception_4d': (528, 16),
                'inception_4e': (832, 16), 'inception_5b': (1024, 32)}
    for name, out in zip(ALL_OUT, outs):
        channels, stride = expected[name]
        assert out.shape == (1, round(channels * widen_factor), 64 // stride, 96 // stride), name
        assert model.out_channels[name] == out.shape[1]
        assert model.out_strides[name] == stride


def test_default_is_inception_4d_at_stride_16_and_trunk_stops_there():
    model = Inception(widen_factor=0.125)
    assert model.stage_names[-1] == 'inception_4d'
    assert not hasattr(model, 'inception_4e') and not hasattr(model, 'pool4')
    out, = model(torch.rand(2, 3, 1000 // 8, 1500 // 8))  # odd map sizes: Caffe ceil-mode pools
    assert out.shape == (2, 66, 7, 11)  # 125 -> 63 -> 31 -> 15 -> 7, 187 -> 94 -> 47 -> 23 -> 11


def test_stage4_stride_8_option():
    model = Inception(widen_factor=0.125, stage4_stride=8,
                      out_indices=('inception_3b', 'inception_4d', 'inception_5b'))
    outs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 12), (8, 12), (4, 6)]
    assert model.out_strides['inception_4d'] == 8 and model.out_strides['inception_5b'] == 16
    with pytest.raises(ValueError, match='stage4_stride'):
        Inception(stage4_stride=4)


@pytest.mark.parametrize('widen_factor', WIDTHS[1:])
def test_widen_factor_divides_every_conv(widen_factor):
    out = ('inception_5b', )
    full = [m for m in Inception(1.0, out_indices=out).modules() if isinstance(m, nn.Conv2d)]
    thin = [m for m in Inception(widen_factor, out_indices=out).modules()
            if isinstance(m, nn.Conv2d)]
    assert len(full) == len(thin) == 3 + 6 * len(INCEPTION_BLOCKS)
    for f, t in zip(full, thin):
        assert t.out_channels == f.out_channels * widen_factor
        assert t.in_channels == (3 if f.in_channels == 3 else f.in_channels * widen_factor)
        assert t.kernel_size == f.kernel_size and t.stride == f.stride


def test_published_filter_counts_and_parameter_ratios():
    model = Inception(1.0, out_indices=('inception_5b', ))
    assert model.out_channels['inception_3a'] == 256
    assert model.out_channels['inception_4d'] == 528
    assert model.out_channels['inception_5b'] == 1024
    params = {w: Inception(w).trunk_parameters('inception_4d') for w in WIDTHS}
    assert params[1.0] == 2621632  # trunk up to 4d, BN, no bias, no LRN
    # ~1/n^2 of the parameters; the stem's 3 input channels keep it just above.
    assert 0.25 <= params[0.5] / params[1.0] < 0.26
    assert 1 / 16 <= params[0.25] / params[1.0] < 1 / 15
    assert 1 / 64 <= params[0.125] / params[1.0] < 1 / 60


def test_frozen_stages_norm_eval_and_errors():
    model = Inception(0.125, frozen_stages=1, norm_eval=True)
    model.train()
    for name in ('stem', 'inception_3a', 'inception_3b'):
        module = getattr(model, name)
        assert not any(p.requires_grad for p in module.parameters()), name
        assert not module.training
    assert all(p.requires_grad for p in model.inception_4a.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    model = Inception(0.125, norm_eval=False)
    model.train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    with pytest.raises(KeyError, match='inception_9z'):
        Inception(out_indices=('inception_9z', ))
    with pytest.raises(ValueError, match='widen_factor'):
        Inception(widen_factor=0)
    model.init_weights()  # default init_cfg (Kaiming convs, constant norms) applies
