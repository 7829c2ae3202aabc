"""The teacher cache of pyramid mimic (mimic_levels): one entry per image holding every teacher
level a pair mimics. Training from a float32 cache equals training from the live teacher; the
store is bound to its level set; the size estimate sums every level; crops are sliced per level;
a missing entry falls back to the live teacher."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmmimic.teacher_cache import CacheError, fill_cache_from_config
from mmmimic.teacher_cache.codec import MAX_HEADER
from mmmimic.testing import config_path
from mmmimic.testing.tiny_mimic import CACHE_PIPELINE, cache_batch, make_teacher_ckpt

FPN_CFG = config_path('smoke/faster-rcnn_r18-tiny_tiny-coco.py')
LEVELS = '0@4,1@8,2@16,3@32,4@64'


def fpn_rpn(channels):
    """mmdet's RPN on a tiny ResNet-18 FPN (5 levels, strides 4-64) of ``channels``."""
    m = Config.fromfile(FPN_CFG).model
    return dict(type='RPN', data_preprocessor=m.data_preprocessor, backbone=m.backbone,
                neck=dict(m.neck, out_channels=channels),
                rpn_head=dict(m.rpn_head, in_channels=channels, feat_channels=channels),
                train_cfg=dict(rpn=m.train_cfg.rpn, rpn_proposal=m.train_cfg.rpn_proposal),
                test_cfg=dict(rpn=m.test_cfg.rpn))


def make_fpn_teacher_ckpt(path):
    return make_teacher_ckpt(path, fpn_rpn(48))


def pyramid_config(tiny_coco, ckpt, cache_dir, mimic_levels='auto', **cache):
    cfg = Config.fromfile(FPN_CFG)
    cfg.train_dataloader.dataset.data_root = tiny_coco
    cfg.train_dataloader.dataset.pipeline = copy.deepcopy(CACHE_PIPELINE)
    cfg.model = dict(
        type='FeatureMimicDistiller', student=fpn_rpn(32), teacher=fpn_rpn(48),
        teacher_ckpt=ckpt, mimic_levels=mimic_levels,
        teacher_cache=dict(dir=str(cache_dir), pipeline=copy.deepcopy(CACHE_PIPELINE),
                           **cache))
    if mimic_levels is None:
        cfg.model.pop('mimic_levels')
    return cfg


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_coco):
    root = tmp_path_factory.mktemp('pyramid_cache')
    ckpt = make_fpn_teacher_ckpt(str(root / 'teacher.pth'))
    cfg = pyramid_config(tiny_coco, ckpt, root / 'cache', dtype='float32', verify=2)
    logs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests run: the same kernels, the same float32 bits
    try:
        stats = fill_cache_from_config(cfg, progress=False, log=logs.append, device='cpu')
    finally:
        torch.set_num_threads(threads)
    return dict(root=root, ckpt=ckpt, cfg=cfg, stats=stats, logs=logs, tiny_coco=tiny_coco)


def build(cfg, **cache_overrides):
    model_cfg = copy.deepcopy(cfg.model)
    if cache_overrides.pop('teacher_cache', True) is None:
        model_cfg.teacher_cache = None
    else:
        model_cfg.teacher_cache.update(cache_overrides)
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def test_training_from_the_cache_equals_training_from_the_live_teacher(setup):
    """Three SGD steps of the FPN RPN student mimicking all five levels from the cache; at each
    step the live-teacher model, given the same weights, has every loss equal within 1e-6
    (relative), and the served maps equal the live teacher's batch maps within 1e-6 of their
    largest value (float32: the teacher ran on each image alone, not on the batch of two)."""
    assert (setup['stats']['entries'], setup['stats']['written']) == (32, 32)
    cached = build(setup['cfg'])
    live = build(setup['cfg'], teacher_cache=None)
    assert [(p['teacher'], p['teacher_stride']) for p in cached.mimic_pairs] == \
        [(0, 4), (1, 8), (2, 16), (3, 32), (4, 64)]
    assert cached.teacher_cache.tensors == ('level0', 'level1', 'level2', 'level3', 'level4')
    assert cached.teacher_cache.identity['teacher_levels'] == LEVELS
    optim = torch.optim.SGD(cached.parameters(), lr=0.01)
    for step, flips in enumerate([(False, True), (True, False), (True, True)]):
        live.load_state_dict(cached.state_dict())
        inputs, samples = cache_batch(setup['cfg'], cached, flips)
        with torch.no_grad():
            served = cached.teacher_features(inputs, samples, False)
            truth = live.teacher.extract_feat(inputs)
        for j in range(5):
            assert served[j].shape == truth[j].shape
            assert (served[j] - truth[j]).abs().max() <= 1e-6 * truth[j].abs().max(), j
        got = []
        for model in (cached, live):
            model.train()
            torch.manual_seed(step)
            got.append(model.loss(inputs, copy.deepcopy(samples)))
        optim.zero_grad()
        sum(sum(v) if isinstance(v, list) else v for v in got[0].values()).backward()
        optim.step()
        got = [{k: float(sum(v) if isinstance(v, list) else v.detach()) for k, v in g.items()}
               for g in got]
        assert got[0].keys() == got[1].keys() >= {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mimic'}
        assert got[1]['loss_mimic'] > 0
        for key in got[1]:
            assert abs(got[0][key] - got[1][key]) <= 1e-6 * abs(got[1][key]), (step, key)
    assert cached.teacher_features.verified  # verify=2 recomputed all five levels
    assert len(cached.teacher_features.checked) == 2


def test_a_store_of_other_levels_is_refused_naming_both_level_sets(setup):
    two = dict(setup['cfg'].model, mimic_levels=[dict(student=0, teacher=0),
                                                 dict(student=1, teacher=1)])
    with pytest.raises(CacheError) as err:
        MODELS.build(two)
    assert 'is stale: it was filled for another teacher_levels' in str(err.value)
    assert (f'it holds teacher levels {LEVELS} (index@stride, one tensor each), this model '
            'mimics teacher levels 0@4,1@8 (index@stride, one tensor each)') in str(err.value)
    single = pyramid_config(setup['tiny_coco'], setup['ckpt'], setup['root'] / 'cache',
                            mimic_levels=None, dtype='float32')
    with pytest.raises(CacheError) as err:
        MODELS.build(single.model)
    assert 'stale: it was filled for another teacher_feature, teacher_levels' in str(err.value)
    assert f'it holds teacher levels {LEVELS}' in str(err.value)
    assert 'this model mimics the single teacher map teacher_feature=-1' in str(err.value)


def test_the_size_estimate_sums_every_level(setup, tmp_path):
    """estimate = entries x the summed element counts of the five levels x 4 bytes (float32);
    what is written exceeds it by the entries' safetensors headers only (< MAX_HEADER each);
    max_gb is checked against all levels (the finest level alone would fit)."""
    model = build(setup['cfg'], teacher_cache=None)
    with torch.no_grad():  # a 96x128 image, padded to 32: the entries' shape
        maps = model.teacher.extract_feat(torch.zeros(1, 3, 96, 128))
    shapes = [tuple(m.shape[1:]) for m in maps]
    assert shapes == [(48, 24, 32), (48, 12, 16), (48, 6, 8), (48, 3, 4), (48, 2, 2)]
    per_entry = sum(c * h * w for c, h, w in shapes) * 4
    stats = setup['stats']
    assert per_entry == 196608 and stats['estimate_bytes'] == 32 * per_entry
    assert stats['estimate_gb'] == 32 * per_entry / 2**30
    header = stats['bytes_written'] - stats['estimate_bytes']
    assert 0 < header < 32 * MAX_HEADER
    assert any('levels 0@4 (48, 24, 32), 1@8 (48, 12, 16), 2@16 (48, 6, 8), 3@32 (48, 3, 4), '
               '4@64 (48, 2, 2) float32 each = 0.19 MiB' in line for line in setup['logs'])
    finest = 32 * 48 * 24 * 32 * 4 / 2**30
    max_gb = stats['estimate_gb'] / 0.95 * 0.99  # all levels: over; the finest alone: under
    assert finest < max_gb * 0.95
    cfg = pyramid_config(setup['tiny_coco'], setup['ckpt'], tmp_path / 'small',
                         dtype='float32', max_gb=max_gb)
    with pytest.raises(CacheError, match=f'estimate {stats["estimate_gb"]:.3f} GiB exceeds '
                                         f'max_gb={max_gb}'):
        fill_cache_from_config(cfg, progress=False, log=lambda msg: None, device='cpu')


def test_a_crafted_entry_with_another_level_is_refused_at_read(setup, tmp_path):
    """An entry whose tensors are not the store's levels (level3 swapped for level5, written
    with a valid checksum) is refused, naming the file, the key and the fields."""
    import shutil

    from mmmimic.teacher_cache import TeacherFeatureCache, encode_entry
    shutil.copytree(setup['root'] / 'cache', tmp_path / 'c')
    probe = build(setup['cfg'], dir=str(tmp_path / 'c'))
    key = sorted(probe.teacher_cache.keys())[0]
    good = probe.teacher_cache.get(key)
    assert sorted(good) == ['level0', 'level1', 'level2', 'level3', 'level4']
    identity = probe.teacher_cache.identity
    probe.teacher_cache.close()
    writer = TeacherFeatureCache(str(tmp_path / 'c'), identity, dtype='float32', readonly=False)
    forged = dict(good)
    forged['level5'] = forged.pop('level3')
    writer._raw_put(key.encode(), encode_entry(forged, key, identity['hash']))
    with pytest.raises(CacheError) as err:
        writer.get(key)
    assert (f"teacher cache {tmp_path}/c/data.mdb, key {key!r}: entry header is not of this "
            "cache format (unknown field(s) ['level5']; missing field(s) ['level3'])") \
        in str(err.value)
    with pytest.raises(CacheError, match=r"the maps \['level0', 'level1', 'level2', 'level4', "
                                         r"'level5'\] are not the tensors of this store"):
        writer.put(key, forged)
    writer.close()


def crop_pipeline(stride):
    meta = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
            'flip_direction', 'crop_offset', 'precrop_shape')
    return [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(128, 96), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='StrideAlignedRandomCrop', crop_size=(64, 64), stride=stride,
                 allow_negative_crop=True),
            dict(type='PackDetInputs', meta_keys=meta)]


def test_a_crop_is_each_levels_slice_at_its_own_stride(setup):
    """StrideAlignedRandomCrop at the coarsest cached stride (64): the cached whole-image entry
    (the crop is not part of the cached pipeline, so the same store serves) is sliced per level at
    offset / its stride, equal to the live teacher's whole-image maps sliced likewise. A crop
    stride finer than the coarsest level is refused."""
    from mmdet.registry import DATASETS
    model_cfg = copy.deepcopy(setup['cfg'].model)
    model_cfg.teacher_cache.pipeline = crop_pipeline(16)
    with pytest.raises(ValueError, match='stride=16 but the teacher map has stride 64'):
        MODELS.build(model_cfg)
    model_cfg.teacher_cache.pipeline = crop_pipeline(64)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    dataset_cfg = copy.deepcopy(setup['cfg'].train_dataloader.dataset)
    offsets = set()
    for seed in range(8):
        index = seed % 4
        np.random.seed(seed)
        packed = DATASETS.build(dict(dataset_cfg, pipeline=crop_pipeline(64)))[index]
        whole_pipeline = copy.deepcopy(CACHE_PIPELINE)
        whole_pipeline[3] = dict(type='RandomFlip',
                                 prob=float(packed['data_samples'].flip))
        whole = DATASETS.build(dict(dataset_cfg, pipeline=whole_pipeline))[index]
        data = model.data_preprocessor(dict(inputs=[packed['inputs']],
                                            data_samples=[packed['data_samples']]), False)
        x, y = packed['data_samples'].crop_offset
        offsets.add((x, y))
        served = model.teacher_features(data['inputs'], data['data_samples'], False)
        full = model.data_preprocessor(dict(inputs=[whole['inputs']],
                                            data_samples=[whole['data_samples']]), False)
        with torch.no_grad():
            truth = model.teacher.extract_feat(full['inputs'])
        for j, s in enumerate((4, 8, 16, 32, 64)):
            n = -(-64 // s)
            expected = truth[j][:, :, y // s:y // s + n, x // s:x // s + n]
            assert served[j].shape == expected.shape == (1, 48, n, n), j
            assert (served[j] - expected).abs().max() <= 1e-6 * expected.abs().max(), (j, x)
    assert {x for x, _ in offsets} == {0, 64}


def test_a_missing_entry_falls_back_to_the_live_teacher_on_every_level(setup, tmp_path):
    cfg = pyramid_config(setup['tiny_coco'], setup['ckpt'], tmp_path / 'part', dtype='float32',
                         missing='live')
    stats = fill_cache_from_config(cfg, progress=False, stop_after=1, log=lambda msg: None,
                                   device='cpu')
    assert stats['stopped'] and stats['written'] == 1
    cached = build(cfg)
    live = build(cfg, teacher_cache=None)
    live.load_state_dict(cached.state_dict())
    inputs, samples = cache_batch(cfg, cached, (True, True))  # no flipped entry was written
    served = cached.teacher_features(inputs, samples, False)
    with torch.no_grad():
        truth = live.teacher.extract_feat(inputs)
    assert len(served) == 5 and all(torch.equal(a, b) for a, b in zip(served, truth))
    assert cached.teacher_cache.live_fallbacks == 1


def test_a_one_stage_student_trains_from_the_cache_like_the_live_one(tiny_coco, tmp_path):
    """A RetinaNet student (its detections are the mimic RoIs) mimicking a RetinaNet teacher's
    P3-P7 from a float32 cache: the losses of two steps equal the live teacher's within 1e-6."""
    from mmmimic.testing.one_stage import tiny_one_stage
    ckpt = make_teacher_ckpt(str(tmp_path / 'retinanet.pth'), tiny_one_stage('retinanet', 48))
    cfg = Config.fromfile(FPN_CFG)
    cfg.train_dataloader.dataset.data_root = tiny_coco
    cfg.train_dataloader.dataset.pipeline = copy.deepcopy(CACHE_PIPELINE)
    cfg.model = dict(
        type='FeatureMimicDistiller', student=tiny_one_stage('retinanet'),
        teacher=tiny_one_stage('retinanet', 48), teacher_ckpt=ckpt, mimic_levels='auto',
        teacher_cache=dict(dir=str(tmp_path / 'cache'), pipeline=copy.deepcopy(CACHE_PIPELINE),
                           dtype='float32'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert fill_cache_from_config(cfg, progress=False, log=lambda msg: None,
                                      device='cpu')['written'] == 32
    finally:
        torch.set_num_threads(threads)
    cached = build(cfg)
    live = build(cfg, teacher_cache=None)
    assert cached.one_stage and cached.teacher_cache.identity['teacher_levels'] == \
        '0@8,1@16,2@32,3@64,4@128'
    for step, flips in enumerate([(False, True), (True, True)]):
        live.load_state_dict(cached.state_dict())
        inputs, samples = cache_batch(cfg, cached, flips)
        got = []
        for model in (cached, live):
            torch.manual_seed(step)
            losses = model.loss(inputs, copy.deepcopy(samples))  # RetinaNet: one per level
            got.append({k: float(sum(v) if isinstance(v, list) else v)
                        for k, v in losses.items()})
        assert got[0].keys() == got[1].keys() == {'loss_cls', 'loss_bbox', 'loss_mimic'}
        assert got[1]['loss_mimic'] > 0
        for key in got[1]:
            assert abs(got[0][key] - got[1][key]) <= 1e-6 * abs(got[1][key]), (step, key)
