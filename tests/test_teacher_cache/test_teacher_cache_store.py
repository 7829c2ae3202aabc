"""TeacherFeatureCache: pipeline plan and refusals, identity, exactness of served maps (flip,
crop, batch padding), corrupt/truncated/missing entries, interrupted filling, verify."""
import copy
import os
import os.path as osp

import lmdb
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS
from mmmimic.teacher_cache import (CacheError, TeacherFeatureCache, cache_identity, cache_key,
                                   cache_marked_complete, compare_maps, fill_teacher_cache,
                                   make_sample_computer, plan_cache_pipeline)
from mmmimic.testing.tiny_mimic import TEACHER_CFG, make_teacher_ckpt

FP16_TOL = 2**-10  # max relative error of an fp16-rounded value is 2**-11; one more bit of slack
STRIDE = 16


def train_pipeline(scale=(256, 192), flip_prob=0.5, crop=None):
    steps = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=flip_prob),
    ]
    meta = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
            'flip_direction')
    if crop is not None:
        steps.append(dict(type='StrideAlignedRandomCrop', crop_size=crop, stride=STRIDE,
                          allow_negative_crop=True))
        meta += ('crop_offset', 'precrop_shape')
    steps.append(dict(type='PackDetInputs', meta_keys=meta))
    return steps


@pytest.fixture(scope='module')
def teacher_env(tmp_path_factory):
    """The tiny teacher (stride 16), its checkpoint and data preprocessor."""
    root = tmp_path_factory.mktemp('teacher')
    ckpt = make_teacher_ckpt(str(root / 'teacher.pth'))
    teacher_cfg = Config.fromfile(TEACHER_CFG).model
    teacher = MODELS.build(copy.deepcopy(teacher_cfg))
    teacher.load_state_dict(torch.load(ckpt, weights_only=True)['state_dict'])
    teacher.eval()
    dp_cfg = teacher_cfg.data_preprocessor
    preprocessor = MODELS.build(copy.deepcopy(dp_cfg))
    return dict(ckpt=ckpt, cfg=teacher_cfg, teacher=teacher, dp_cfg=dp_cfg, dp=preprocessor)


def dataset_builder(tiny_coco):
    def build(pipeline):
        return DATASETS.build(dict(
            type='CocoDataset', data_root=tiny_coco, ann_file='annotations/train.json',
            data_prefix=dict(img='train/'), metainfo=dict(classes=('person', )),
            filter_cfg=dict(filter_empty_gt=True), pipeline=pipeline, test_mode=False))
    return build


def open_cache(env, path, pipeline, readonly=False, **kwargs):
    plan = plan_cache_pipeline(pipeline, STRIDE)
    identity = cache_identity(env['cfg'], env['ckpt'], -1, env['dp_cfg'], plan['cached'],
                              kwargs.get('dtype', 'float16'))
    return TeacherFeatureCache(str(path), identity, readonly=readonly, **kwargs), plan


def fill(env, path, tiny_coco, pipeline, **kwargs):
    cache, plan = open_cache(env, path, pipeline)
    stats = fill_teacher_cache(cache, dataset_builder(tiny_coco), plan, env['teacher'],
                               env['dp'], -1, progress=False, log=lambda msg: None, **kwargs)
    return cache, plan, stats


@pytest.fixture(scope='module')
def filled(teacher_env, tiny_coco, tmp_path_factory):
    """A complete cache of the tiny train split at 192x256 with both flip states."""
    path = tmp_path_factory.mktemp('cache') / 'lmdb'
    cache, plan, stats = fill(teacher_env, path, tiny_coco, train_pipeline())
    cache.close()
    return dict(path=path, plan=plan, stats=stats)


def live_batch_map(env, packed):
    data = env['dp'](dict(inputs=[p['inputs'] for p in packed],
                          data_samples=[p['data_samples'] for p in packed]), False)
    with torch.no_grad():
        return env['teacher'].extract_feat(data['inputs'])[-1], data


# ------------------------------------------------------------------ pipeline plan / refusals
def test_plan_accepts_the_cacheable_pipeline():
    plan = plan_cache_pipeline(train_pipeline(crop=(128, 128)), STRIDE)
    assert [t['type'] for t in plan['loading']] == ['LoadImageFromFile', 'LoadAnnotations']
    assert plan['resizes'] == [dict(type='Resize', scale=[256, 192], keep_ratio=True)]
    assert plan['flip'] is True and plan['crop']['crop_size'] == [128, 128]
    multi = train_pipeline()
    multi[2] = dict(type='RandomChoiceResize', scales=[(256, 192), (320, 240)], keep_ratio=True)
    assert len(plan_cache_pipeline(multi, STRIDE)['resizes']) == 2
    no_resize = [t for t in train_pipeline() if t['type'] != 'Resize']
    assert plan_cache_pipeline(no_resize, STRIDE)['resizes'] == [None]


@pytest.mark.parametrize('step, words', [
    (dict(type='RandomResize', scale=[(256, 192), (320, 240)]),
     ['RandomResize', 'RandomChoiceResize']),
    (dict(type='PhotoMetricDistortion'), ['PhotoMetricDistortion', 'teacher_cache=None']),
    (dict(type='RandomCrop', crop_size=(64, 64)), ['RandomCrop', 'StrideAlignedRandomCrop']),
    (dict(type='RandomAffine'), ['RandomAffine', 'teacher_cache=None']),
])
def test_plan_refuses_transforms_it_cannot_represent(step, words):
    pipeline = train_pipeline()
    pipeline.insert(3, step)
    with pytest.raises(ValueError) as err:
        plan_cache_pipeline(pipeline, STRIDE)
    for word in words:
        assert word in str(err.value)


def test_plan_refuses_bad_flip_crop_and_meta():
    vertical = train_pipeline()
    vertical[3] = dict(type='RandomFlip', prob=0.5, direction='vertical')
    with pytest.raises(ValueError, match='only horizontal'):
        plan_cache_pipeline(vertical, STRIDE)
    wrong_stride = train_pipeline(crop=(128, 128))
    wrong_stride[4]['stride'] = 8
    with pytest.raises(ValueError, match='stride=8 but the teacher map has stride 16'):
        plan_cache_pipeline(wrong_stride, STRIDE)
    no_meta = train_pipeline(crop=(128, 128))
    no_meta[-1] = dict(type='PackDetInputs')
    with pytest.raises(ValueError, match=r"lack \['crop_offset', 'precrop_shape'\]"):
        plan_cache_pipeline(no_meta, STRIDE)
    crop_first = train_pipeline(crop=(128, 128))
    crop_first[3], crop_first[4] = crop_first[4], crop_first[3]
    with pytest.raises(ValueError, match="'RandomFlip' is out of order"):
        plan_cache_pipeline(crop_first, STRIDE)


# ------------------------------------------------------------------ identity
def test_identity_detects_every_component(teacher_env, filled, tmp_path):
    path, pipeline = filled['path'], train_pipeline()
    cache, _ = open_cache(teacher_env, path, pipeline, readonly=True)  # same identity: opens
    assert cache.complete and len(cache.keys()) == filled['stats']['entries']
    cache.close()
    other_ckpt = str(tmp_path / 'teacher2.pth')
    state = torch.load(teacher_env['ckpt'], weights_only=True)
    state['meta'] = {'note': 'one byte different is enough'}
    torch.save(state, other_ckpt)
    plan = plan_cache_pipeline(pipeline, STRIDE)
    env = teacher_env
    variants = {
        'teacher_checkpoint': cache_identity(env['cfg'], other_ckpt, -1, env['dp_cfg'],
                                             plan['cached'], 'float16'),
        'teacher_feature': cache_identity(env['cfg'], env['ckpt'], 0, env['dp_cfg'],
                                          plan['cached'], 'float16'),
        'normalisation': cache_identity(env['cfg'], env['ckpt'], -1,
                                        dict(env['dp_cfg'], std=[1., 1., 1.]), plan['cached'],
                                        'float16'),
        'pipeline': cache_identity(
            env['cfg'], env['ckpt'], -1, env['dp_cfg'],
            plan_cache_pipeline(train_pipeline(scale=(320, 240)), STRIDE)['cached'], 'float16'),
        'teacher_config': cache_identity(dict(env['cfg'], init_cfg=None), env['ckpt'], -1,
                                         env['dp_cfg'], plan['cached'], 'float16'),
    }
    for component, identity in variants.items():
        with pytest.raises(CacheError) as err:
            TeacherFeatureCache(str(path), identity, readonly=True)
        assert 'stale' in str(err.value) and component in str(err.value)
        assert osp.join(str(path), 'data.mdb') in str(err.value)


# ------------------------------------------------------------------ exactness
def test_flipped_entries_equal_the_teacher_on_flipped_images(teacher_env, filled, tiny_coco):
    """Per image and flip state: what the cache serves vs the live teacher on that image
    (a batch of one, padded as in training), and the trap: a flipped map is not it."""
    cache, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True)
    build = dataset_builder(tiny_coco)
    plain, flipped = build(train_pipeline(flip_prob=0.0)), build(train_pipeline(flip_prob=1.0))
    worst_cos, worst_rel, trap_cos = 1.0, 0.0, 1.0
    for index in range(4):
        for dataset in (plain, flipped):
            packed = dataset[index]
            live, data = live_batch_map(teacher_env, [packed])
            served, missing = cache.serve([packed['data_samples']],
                                          tuple(data['inputs'].shape[-2:]), STRIDE, 'cpu')
            assert not missing
            cos, rel = compare_maps(served, live)
            worst_cos, worst_rel = min(worst_cos, cos), max(worst_rel, rel)
        flipped_map = cache.get(cache_key(packed['data_samples'].img_path, None,
                                          packed['data_samples'].img_shape)).flip(-1)
        trap_cos = min(trap_cos, compare_maps(flipped_map.float(), live[0])[0])
    assert worst_cos >= 0.9999 and worst_rel <= FP16_TOL, (worst_cos, worst_rel)
    assert trap_cos < 0.99  # flipping the cached map would be a different target
    cache.close()


def test_same_size_batch_equals_the_live_padded_batch(teacher_env, filled, tiny_coco):
    """Equal-size images (Caltech, vtest): per-image entries give exactly the live batch map."""
    cache, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True)
    dataset = dataset_builder(tiny_coco)(train_pipeline(flip_prob=0.5))
    packed = [dataset[i] for i in range(3)]
    live, data = live_batch_map(teacher_env, packed)
    served, _ = cache.serve([p['data_samples'] for p in packed],
                            tuple(data['inputs'].shape[-2:]), STRIDE, 'cpu')
    cos, rel = compare_maps(served, live)
    assert served.shape == live.shape == (3, 64, 12, 16)
    assert cos >= 0.9999 and rel <= FP16_TOL, (cos, rel)
    cache.close()


def test_crops_are_slices_of_the_whole_image_map(teacher_env, filled, tiny_coco):
    """A stride-aligned crop is served as the slice of the whole (flipped) image's map: exact
    against the live teacher on the whole image, sliced. The live teacher on the crop alone
    differs at the crop borders (zero padding instead of context): measured, far from exact."""
    pipeline = train_pipeline(crop=(128, 128))
    cache, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True)
    build = dataset_builder(tiny_coco)
    whole = build(train_pipeline(flip_prob=1.0))
    cropped_pipeline = train_pipeline(flip_prob=1.0, crop=(128, 128))
    crops = Compose(cropped_pipeline[2:])  # resize, flip, crop, pack on an already loaded image
    offsets = set()
    for index in range(4):
        base = Compose(cropped_pipeline[:2])(whole.get_data_info(index))
        packed = crops(copy.deepcopy(base))
        meta = packed['data_samples'].metainfo
        x, y = meta['crop_offset']
        offsets.add((x, y))
        assert x % STRIDE == 0 and y % STRIDE == 0
        served, _ = cache.serve([packed['data_samples']], (128, 128), STRIDE, 'cpu')
        live_whole, _ = live_batch_map(teacher_env, [whole[index]])
        expected = live_whole[:, :, y // 16:y // 16 + 8, x // 16:x // 16 + 8]
        cos, rel = compare_maps(served, expected)
        assert cos >= 0.9999 and rel <= FP16_TOL, (cos, rel)
        live_crop, _ = live_batch_map(teacher_env, [packed])
        assert compare_maps(served, live_crop)[1] > 0.01  # not what the cache serves
    assert len(offsets) > 1
    assert plan_cache_pipeline(pipeline, STRIDE)['crop'] is not None
    cache.close()


# ------------------------------------------------------------------ bad caches
def test_missing_entry_errors_or_falls_back_when_configured(teacher_env, filled, tiny_coco,
                                                            caplog):
    dataset = dataset_builder(tiny_coco)(train_pipeline(scale=(320, 240), flip_prob=0.0))
    sample = dataset[0]['data_samples']
    cache, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True)
    with pytest.raises(CacheError) as err:
        cache.serve([sample], (240, 320), STRIDE, 'cpu')
    assert osp.join(str(filled['path']), 'data.mdb') in str(err.value)
    assert repr(cache_key(sample.img_path, None, (240, 320))) in str(err.value)
    cache.close()
    cache, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True,
                          missing='live')
    served, missing = cache.serve([sample], (240, 320), STRIDE, 'cpu')
    assert served is None and missing == [cache_key(sample.img_path, None, (240, 320))]
    assert cache.live_fallbacks == 1
    cache.close()


def test_corrupt_and_truncated_entries_name_file_and_key(teacher_env, filled, tmp_path,
                                                         tiny_coco):
    cache, plan, _ = fill(teacher_env, tmp_path / 'c', tiny_coco, train_pipeline(), stop_after=2)
    key = cache.keys()[0]
    raw = cache._raw_get(key.encode())
    cache._raw_put(key.encode(), raw[:-2] + bytes([raw[-2] ^ 0xFF, raw[-1]]))  # one bit flip
    with pytest.raises(CacheError, match=r'data\.mdb, key .*checksum mismatch'):
        cache.get(key)
    cache._raw_put(key.encode(), raw[:-100])
    with pytest.raises(CacheError, match=r'data\.mdb, key .*truncated entry'):
        cache.get(key)
    cache._raw_put(key.encode(), b'\xff\xff\x00\x00garbage')
    with pytest.raises(CacheError, match='corrupt entry header'):
        cache.get(key)
    cache.close()
    data = osp.join(str(tmp_path / 'c'), 'data.mdb')
    os.truncate(data, os.path.getsize(data) // 2)  # reading it would SIGBUS without the check
    with pytest.raises(CacheError, match=r'data\.mdb is truncated'):
        open_cache(teacher_env, tmp_path / 'c', train_pipeline(), readonly=True)
    with open(data, 'r+b') as f:
        f.write(b'\0' * 64)
    with pytest.raises(CacheError, match='unreadable'):
        open_cache(teacher_env, tmp_path / 'c', train_pipeline(), readonly=True)
    with pytest.raises(CacheError, match='teacher cache not found'):
        open_cache(teacher_env, tmp_path / 'nothing', train_pipeline(), readonly=True)


def test_fp16_overflow_is_refused(teacher_env, tmp_path):
    cache, _ = open_cache(teacher_env, tmp_path / 'o', train_pipeline())
    with pytest.raises(CacheError, match="not finite in float16.*dtype='float32'"):
        cache.put('a|none|1x1', torch.full((1, 1, 1), 1e6))
    cache.close()


# ------------------------------------------------------------------ filling
def test_interrupted_fill_resumes_and_never_leaves_half_entries(teacher_env, filled, tmp_path,
                                                                tiny_coco):
    total = filled['stats']['entries']
    assert total == 2 * 16 and filled['stats']['written'] == total
    cache, _, stats = fill(teacher_env, tmp_path / 'r', tiny_coco, train_pipeline(),
                           stop_after=5)
    assert stats['stopped'] and stats['written'] == 5 and len(cache.keys()) == 5
    assert not cache.complete and not cache_marked_complete(str(tmp_path / 'r'))
    assert cache_marked_complete(filled['path']) and not cache_marked_complete(str(tmp_path))

    # a transaction that fails after writing its key leaves nothing readable
    def failing():
        yield (b'__done__/x/0', b'k')
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cache._raw_put(b'half|none|1x1', b'value', failing())
    assert cache._raw_get(b'half|none|1x1') is None and not cache.is_done('x', 0)
    cache.close()
    cache, _, stats = fill(teacher_env, tmp_path / 'r', tiny_coco, train_pipeline())
    assert (stats['written'], stats['skipped']) == (total - 5, 5) and cache.complete
    reference, _ = open_cache(teacher_env, filled['path'], train_pipeline(), readonly=True)
    assert sorted(cache.keys()) == sorted(reference.keys())
    for key in reference.keys():
        assert torch.equal(cache.get(key), reference.get(key))
    cache.close()
    reference.close()


def test_fill_refuses_beyond_max_gb_before_writing(teacher_env, tmp_path, tiny_coco):
    cache, plan = open_cache(teacher_env, tmp_path / 'small', train_pipeline(), max_gb=1e-5)
    with pytest.raises(CacheError, match='exceeds max_gb=1e-05'):
        fill_teacher_cache(cache, dataset_builder(tiny_coco), plan, teacher_env['teacher'],
                           teacher_env['dp'], -1, progress=False, log=lambda msg: None)
    cache.close()
    env = lmdb.open(str(tmp_path / 'small'), readonly=True, lock=False)
    with env.begin() as txn:
        assert [k for k, _ in txn.cursor()] == [b'__identity__']


# ------------------------------------------------------------------ verify
def test_verify_recomputes_entries_from_the_training_samples(teacher_env, tmp_path, tiny_coco):
    """check_entry compares an entry with the live teacher recomputed from the training sample
    of its key (make_sample_computer: the sample's image through the configured pipeline); an
    entry that is wrong under a valid checksum (a re-encoded stale map) is named."""
    cache, plan, _ = fill(teacher_env, tmp_path / 'v', tiny_coco, train_pipeline(),
                          stop_after=6)
    compute = make_sample_computer(teacher_env['teacher'], teacher_env['dp'], plan, -1)
    dataset = dataset_builder(tiny_coco)(train_pipeline(flip_prob=0.0))
    metas = [dataset[i]['data_samples'].metainfo for i in range(3)]
    for meta in metas:
        key, live = compute(meta)
        assert key in cache.keys()
        cos, rel = cache.check_entry(key, live)
        assert cos >= 0.9999 and rel <= FP16_TOL
    key, live = compute(metas[2])
    cache.put(key, cache.get(key).float() * 1.01)  # a stale entry under a valid checksum
    with pytest.raises(CacheError) as err:
        cache.check_entry(key, live)
    assert repr(key) in str(err.value) and 'does not match the live teacher' in str(err.value)
    assert cache.check_entry('absent|none|192x256', live) is None
    cache.close()
