"""Every network config of issue 5 builds its model (the dataset part is not built)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmmimic  # noqa: F401  (registers Inception, RFCN, ...)
from mmdet.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for d in ('inception', 'rfcn', 'teachers', 'voc')
    for p in glob.glob(osp.join(REPO, 'configs', d, '*.py')))
IDS = [osp.relpath(p, osp.join(REPO, 'configs')) for p in CONFIGS]


def _load(path):
    """Config.fromfile, skipping while the Caltech dataset base (another issue) is absent."""
    try:
        return Config.fromfile(path)
    except FileNotFoundError as e:
        if '_base_/datasets/caltech' in str(e):
            pytest.skip(f'Caltech dataset base config not written yet: {e}')
        raise


def test_all_issue5_configs_present():
    assert len(CONFIGS) == 16, IDS


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_builds_model(path):
    cfg = _load(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)  # no init_weights: pretrained teachers are not downloaded
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 0
    if 'caltech' in path:
        anchors = cfg.model.rpn_head.anchor_generator
        assert list(anchors.ratios) == [2.0, 3.0]  # h:w = 2:1 and 3:1
        assert [s * st for s in anchors.scales for st in anchors.strides][:3] in (
            [64, 128, 256], )  # areas 4^2, 8^2, 16^2 in stride-16 units, in pixels
        assert cfg.train_cfg.max_iters == 40000
        assert cfg.optim_wrapper.optimizer.lr == 0.001
        assert cfg.optim_wrapper.optimizer.weight_decay == 0.0005
        assert cfg.param_scheduler[0].milestones == [30000]
    if 'rfcn' in path:
        head = model.roi_head.bbox_head
        assert head.roi_feat_size == (7, 7) and head.reg_class_agnostic
        assert head.rfcn_cls.out_channels == 49 * 2


def test_width_variants_shrink_consistently():
    init_default_scope('mmdet')
    counts = {}
    for suffix, w in (('', 1.0), ('-1-2', 0.5), ('-1-4', 0.25), ('-1-8', 0.125)):
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'voc', f'faster-rcnn_inception{suffix}'
                                       '_1xb2-4e_voc0712.py'))
        assert cfg.model.backbone.widen_factor == w
        model = MODELS.build(cfg.model)
        out, = model.backbone(torch.rand(1, 3, 64, 64))
        assert out.shape[1] == cfg.model.rpn_head.in_channels == round(528 * w)
        counts[w] = sum(p.numel() for p in model.parameters())
    assert counts[1.0] > counts[0.5] > counts[0.25] > counts[0.125]


def test_benchmark_speed_tool(tmp_path):
    from mmmimic.apis.speed import benchmark_detectors, speed_columns, write_speed_outputs
    configs = [osp.join(REPO, 'configs', 'voc', f'faster-rcnn_inception-{w}_1xb2-4e_voc0712.py')
               for w in ('1-4', '1-8')]
    rows = benchmark_detectors(configs, ['64x96'], warmup=0, runs=1, threads=None,
                               device='cpu', flops=True, fuse_conv_bn=True)
    assert rows[0]['param_ratio'] == 1.0 and rows[0]['speedup@64x96'] == 1.0
    assert rows[1]['params_M'] < rows[0]['params_M']
    assert 0 < rows[1]['GFLOPs@64x96'] < rows[0]['GFLOPs@64x96']
    table = write_speed_outputs(rows, speed_columns(['64x96'], True), str(tmp_path), 'test')
    assert 'speedup@64x96' in table
    for name in ('speed.csv', 'speed.md', 'speed.png'):
        assert (tmp_path / name).exists(), name
