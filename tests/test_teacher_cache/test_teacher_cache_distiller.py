"""FeatureMimicDistiller with teacher_cache: losses equal the live teacher's, build-time refusals,
verify at the first training step, missing entries (error / logged live fallback)."""
import copy
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmdet.registry import MODELS
from mmmimic.teacher_cache import CacheError, TeacherFeatureCache, fill_cache_from_config
from mmmimic.testing.tiny_mimic import (CACHE_PIPELINE, CONFIG_DIR, MIMIC_CFG, cache_batch,
                                        make_teacher_ckpt)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
PIPELINE = CACHE_PIPELINE


def write_config(path, tiny_coco, ckpt, cache_dir, base=MIMIC_CFG, pipeline=PIPELINE,
                 **cache_kwargs):
    cache = dict(dir=str(cache_dir), pipeline=pipeline, **cache_kwargs)
    path.write_text(
        f'_base_ = [{base!r}]\n'
        f'train_pipeline = {pipeline!r}\n'
        f'train_dataloader = dict(dataset=dict(data_root={tiny_coco!r}, '
        f'pipeline=train_pipeline))\n'
        f'model = dict(teacher_ckpt={ckpt!r}, teacher_cache={cache!r})\n')
    return Config.fromfile(str(path))


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_coco):
    root = tmp_path_factory.mktemp('cached_mimic')
    ckpt = make_teacher_ckpt(str(root / 'teacher.pth'))
    cfg = write_config(root / 'mimic_cached.py', tiny_coco, ckpt, root / 'cache', verify=2)
    stats = fill_cache_from_config(cfg, progress=False, log=lambda msg: None)
    return dict(root=root, ckpt=ckpt, cfg=cfg, stats=stats, tiny_coco=tiny_coco)


batch = cache_batch


def build(cfg, **cache_overrides):
    model_cfg = copy.deepcopy(cfg.model)
    if cache_overrides.get('teacher_cache', True) is None:
        model_cfg.teacher_cache = None
    else:
        model_cfg.teacher_cache.update(cache_overrides)
    return MODELS.build(model_cfg)


def losses_of(model, inputs, samples):
    model.train()
    torch.manual_seed(0)
    return {k: float(sum(v) if isinstance(v, list) else v)
            for k, v in model.loss(inputs, copy.deepcopy(samples)).items()}


def test_cached_losses_equal_live_losses(setup):
    assert setup['stats']['entries'] == 32 and setup['stats']['written'] == 32
    cached = build(setup['cfg'])
    live = build(setup['cfg'], teacher_cache=None)
    live.load_state_dict(cached.state_dict())
    inputs, samples = batch(setup['cfg'], cached)
    assert [s.flip for s in samples] == [False, True]
    got, expected = losses_of(cached, inputs, samples), losses_of(live, inputs, samples)
    assert cached.teacher_features.verified  # verify=2: both samples of the first step
    assert len(cached.teacher_features.checked) == 2
    assert copy.deepcopy(cached).teacher_cache is cached.teacher_cache  # e.g. an EMA copy
    assert got.keys() == expected.keys()
    for key in ('loss_rpn_cls', 'loss_rpn_bbox'):
        assert got[key] == expected[key]
    assert expected['loss_mimic'] > 0
    assert abs(got['loss_mimic'] - expected['loss_mimic']) <= 2e-3 * expected['loss_mimic']


@pytest.mark.parametrize('base, message', [
    (osp.join(CONFIG_DIR, 'logits-mimic_rpn_r18-w8_tiny.py'), "mimic_input 'rpn_outputs'"),
])
def test_build_refuses_modes_that_need_the_live_teacher(setup, tmp_path, base, message):
    cfg = write_config(tmp_path / 'c.py', setup['tiny_coco'], setup['ckpt'],
                       setup['root'] / 'cache', base=base)
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg.model)


def test_build_refuses_uncacheable_pipeline_and_bad_keys(setup, tmp_path):
    pipeline = copy.deepcopy(PIPELINE)
    pipeline.insert(3, dict(type='PhotoMetricDistortion'))
    cfg = write_config(tmp_path / 'p.py', setup['tiny_coco'], setup['ckpt'],
                       setup['root'] / 'cache', pipeline=pipeline)
    with pytest.raises(ValueError, match="'PhotoMetricDistortion' changes the pixels"):
        MODELS.build(cfg.model)
    with pytest.raises(ValueError, match=r"unknown teacher_cache key\(s\) \['verfy'\]"):
        build(setup['cfg'], verfy=2)
    # the store is built from this dict, not from a registry
    with pytest.raises(ValueError, match=r"teacher_cache.type='TeacherFeatureCache': the teacher "
                                         r'cache is not built from a registry; remove the key '
                                         r'"type"'):
        build(setup['cfg'], type='TeacherFeatureCache')
    with pytest.raises(CacheError, match='teacher cache not found'):
        build(setup['cfg'], dir=str(tmp_path / 'none'))
    with pytest.raises(CacheError, match='stale: it was filled for another pipeline'):
        build(setup['cfg'], pipeline=[dict(PIPELINE[0]), dict(PIPELINE[1]),
                                      dict(type='Resize', scale=(160, 120), keep_ratio=True),
                                      dict(PIPELINE[3]), dict(PIPELINE[4])])


def test_verify_fails_at_the_first_training_step_on_a_stale_entry(setup, tmp_path):
    """verify recomputes the served entries from the training samples themselves: an entry that
    is wrong under a valid checksum (written through the cache's own put) is named."""
    import shutil

    from mmmimic.teacher_cache import sample_cache_key
    cache_dir = tmp_path / 'tampered'
    shutil.copytree(setup['root'] / 'cache', cache_dir)
    probe = build(setup['cfg'], dir=str(cache_dir))
    inputs, samples = batch(setup['cfg'], probe)
    identity = probe.teacher_cache.identity
    probe.teacher_cache.close()
    key = sample_cache_key(samples[1].metainfo)[0]
    writer = TeacherFeatureCache(str(cache_dir), identity, readonly=False)
    writer.put(key, writer.get(key).float() * 0.9)
    writer.close()
    model = build(setup['cfg'], dir=str(cache_dir), verify=32)
    model.train()
    with pytest.raises(CacheError) as err:
        model.loss(inputs, samples)
    assert repr(key) in str(err.value) and 'does not match the live teacher' in str(err.value)
    assert model.teacher_features.checked == [sample_cache_key(samples[0].metainfo)[0]]
    model.eval()  # outside training no verification (e.g. the tool's checks)
    assert not model.teacher_features.verified


def test_incomplete_cache_errors_or_falls_back_live_when_configured(setup, tmp_path):
    cfg = write_config(tmp_path / 'i.py', setup['tiny_coco'], setup['ckpt'], tmp_path / 'part')
    stats = fill_cache_from_config(cfg, progress=False, stop_after=1, log=lambda msg: None)
    assert stats['stopped'] and stats['written'] == 1
    with pytest.raises(CacheError, match=r'part/data\.mdb is incomplete .*resume'):
        MODELS.build(cfg.model)
    cached = build(cfg, missing='live')
    live = build(cfg, teacher_cache=None)
    live.load_state_dict(cached.state_dict())
    inputs, samples = batch(cfg, cached, flips=(True, True))
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        got = losses_of(cached, inputs, samples)
    finally:
        logger.removeHandler(handler)
    assert got == losses_of(live, inputs, samples)  # the live teacher, bit-identical
    assert cached.teacher_cache.live_fallbacks == 1
    assert any('uses the live teacher' in r.getMessage() for r in records)


def test_served_map_has_the_teacher_networks_own_size(setup):
    """Inception floors odd sizes (100x136 -> 6x8 cells at stride 16, not ceil's 7x9): the served
    map takes the size the teacher itself gives for the batch shape (measured once per shape)."""
    from mmmimic.teacher_cache import TeacherMapGeometry
    teacher_cfg = Config.fromfile(osp.join(REPO, 'configs', 'inception',
                                           'rpn_inception_1xb2-40k_caltech.py')).model
    teacher = MODELS.build(teacher_cfg).eval()
    geometry = TeacherMapGeometry(teacher, -1)
    with torch.no_grad():
        live = teacher.extract_feat(torch.zeros(1, 3, 100, 136))[-1]
    assert geometry.map_shape((100, 136)) == tuple(live.shape[-2:]) == (6, 8)
    assert geometry.sizes == {(100, 136): (6, 8)}
    model = build(setup['cfg'])
    inputs, samples = batch(setup['cfg'], model)
    served, _ = model.teacher_cache.serve(samples, (96, 128), 16, 'cpu', map_shape=(5, 7))
    assert served.shape == (2, 64, 5, 7)
