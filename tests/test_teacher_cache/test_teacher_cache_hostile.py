"""A teacher cache is untrusted data (issue #24): nothing in an entry is built or run, an entry
is bound to its key and its store, shape and dtype are checked at every read, a store changed
or truncated under a running job stops it with a message (no SIGBUS), and every refusal names
the store (and the key).

Each test uses a real artefact: stores filled by the tiny teacher from the tiny COCO split, then
tampered with the way a received or damaged file would be. Crashes are run in a subprocess with
a time limit."""
import copy
import hashlib
import json
import os
import os.path as osp
import shutil
import struct
import subprocess
import sys
import textwrap

import lmdb
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS, TRANSFORMS
from mmmimic.teacher_cache import (CacheError, TeacherFeatureCache, compare_maps,
                                   fill_cache_from_config, make_sample_computer,
                                   recipe_pipeline, sample_cache_key)
from mmmimic.teacher_cache.codec import HEADER_LEN
from mmmimic.teacher_cache.codec import encode_entry as encode_map
from mmmimic.testing import checkout_env
from mmmimic.testing.tiny_mimic import CACHE_PIPELINE, MIMIC_CFG, cache_batch, make_teacher_ckpt

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.abspath(osp.join(HERE, '..', '..'))
TIMEOUT = 240  # s, per subprocess; each finishes in ~10 s


def write_config(path, tiny_coco, ckpt, cache_dir, **cache_kwargs):
    cache = dict(dir=str(cache_dir), pipeline=CACHE_PIPELINE, **cache_kwargs)
    path.write_text(
        f'_base_ = [{MIMIC_CFG!r}]\n'
        f'train_pipeline = {CACHE_PIPELINE!r}\n'
        f'train_dataloader = dict(dataset=dict(data_root={tiny_coco!r}, '
        f'pipeline=train_pipeline))\n'
        f'model = dict(teacher_ckpt={ckpt!r}, teacher_cache={cache!r})\n')
    return str(path)


def other_teacher_ckpt(path, ckpt):
    """The same network with other weights: its maps have the same shape, not the same values."""
    state = torch.load(ckpt, weights_only=True)
    gen = torch.Generator().manual_seed(5)
    for name, value in state['state_dict'].items():
        if value.dtype.is_floating_point and value.dim() == 4:
            value.add_(torch.randn(value.shape, generator=gen) * value.std() * 0.5)
    torch.save(state, path)
    return path


@pytest.fixture(scope='module')
def stores(tmp_path_factory, tiny_coco):
    """Two complete stores of the tiny train split (16 images x 2 flip states, (64, 6, 8)
    float16 entries): teacher A's and teacher B's (same network, other weights)."""
    root = tmp_path_factory.mktemp('hostile_cache')
    ckpt_a = make_teacher_ckpt(str(root / 'a.pth'))
    ckpt_b = other_teacher_ckpt(str(root / 'b.pth'), ckpt_a)
    cfg_a = write_config(root / 'a.py', tiny_coco, ckpt_a, root / 'A', verify=2)
    cfg_b = write_config(root / 'b.py', tiny_coco, ckpt_b, root / 'B')
    for cfg in (cfg_a, cfg_b):
        stats = fill_cache_from_config(Config.fromfile(cfg), progress=False, device='cpu',
                                       log=lambda msg: None)
        assert stats['written'] == 32
    return dict(root=root, tiny_coco=tiny_coco, ckpt_a=ckpt_a, ckpt_b=ckpt_b, cfg_a=cfg_a,
                cfg_b=cfg_b, A=str(root / 'A'), B=str(root / 'B'))


def copy_store(stores, name, tmp_path):
    dst = str(tmp_path / name)
    shutil.copytree(stores['A'], dst)
    return dst


def build_model(cfg_path, cache_dir, **overrides):
    cfg = Config.fromfile(cfg_path)
    cfg.model.teacher_cache.update(dict(dir=cache_dir, **overrides))
    return cfg, MODELS.build(cfg.model)


batch = cache_batch


def writer_of(model, cache_dir):
    identity = model.teacher_cache.identity
    model.teacher_cache.close()
    return TeacherFeatureCache(cache_dir, identity, readonly=False)


def encode_entry(store_hash, key, array, **extra):
    """An entry of ``array`` (any dtype) bound to ``key`` and ``store_hash`` with a valid
    checksum, plus ``extra`` metadata (e.g. a recipe)."""
    return encode_map(torch.from_numpy(array), key, store_hash, **extra)


PRELUDE = '''
import copy, os, sys
import torch
torch.set_num_threads(1)
from mmengine.config import Config
import mmmimic
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmmimic.testing.tiny_mimic import cache_batch as batch
from mmmimic.teacher_cache import CacheError
register_all_modules()

'''


def run_job(tmp_path, body):
    """Run ``body`` (after PRELUDE) in a fresh interpreter with a time limit; a CacheError it
    raises is printed as ``REFUSED: ...`` with exit code 3."""
    script = tmp_path / 'job.py'
    script.write_text(PRELUDE + 'try:\n' + textwrap.indent(textwrap.dedent(body), '    ') +
                      'except CacheError as err:\n    print("REFUSED:", err)\n    sys.exit(3)\n')
    env = checkout_env()  # this checkout's mmmimic first
    return subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)


# ------------------------------------------------------------------ 1. data never becomes code
def test_recipe_payload_runs_under_full_trust_and_is_refused_without_running(stores, tmp_path):
    """The payload the old verify built through the registry (an entry's recipe.resize with a
    dotted type name) runs when built; the cache refuses the entry by its closed schema and
    verify, recomputing from the training sample, never reads it: no marker."""
    cache_dir = copy_store(stores, 'payload', tmp_path)
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    inputs, samples = batch(cfg, model)
    key0, key1 = (sample_cache_key(s.metainfo)[0] for s in samples)
    marker = str(tmp_path / 'marker')
    recipe = dict(img_path=samples[0].img_path, flip=False,
                  resize=dict(type='subprocess.run', args=['touch', marker]))
    writer = writer_of(model, cache_dir)
    good = writer.get(key0).numpy()
    # a valid entry (checksum, key and store binding) that also carries the recipe
    writer._raw_put(key0.encode(), encode_entry(writer.identity['hash'], key0, good,
                                                recipe=json.dumps(recipe)))
    # and the entry exactly as format 1 wrote it (shape, dtype, blake2b, recipe)
    old_header = json.dumps(dict(shape=list(good.shape), dtype='float16', recipe=recipe,
                                 blake2b=hashlib.blake2b(good.tobytes(),
                                                         digest_size=16).hexdigest())).encode()
    writer._raw_put(key1.encode(), struct.pack('<I', len(old_header)) + old_header +
                    good.tobytes())
    writer.close()

    TRANSFORMS.build(copy.deepcopy(recipe['resize']))  # full trust: the registry runs it
    assert osp.isfile(marker)
    os.remove(marker)

    proc = run_job(tmp_path, f'''
        cfg = Config.fromfile({stores["cfg_a"]!r})
        cfg.model.teacher_cache.update(dir={cache_dir!r}, verify=32)
        model = MODELS.build(cfg.model)
        inputs, samples = batch(cfg, model)
        model.train()
        model.loss(inputs, samples)
        print('TRAINED')
    ''')
    assert not osp.exists(marker)  # the previous code's verify ran the payload here
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stdout
    assert f'teacher cache {cache_dir}/data.mdb, key {key0!r}' in message
    assert ("entry header is not of this cache format (unknown field(s) ['recipe']): an "
            "entry holds exactly the tensor 'map' and the metadata ['format', 'key', 'store', "
            "'blake2b'], and nothing in it is built or run") in message
    assert not osp.exists(marker)
    _, reader = build_model(stores['cfg_a'], cache_dir)
    with pytest.raises(CacheError) as err:
        reader.teacher_cache.get(key1)
    # its 4-byte header length and the header's first bytes read as safetensors' 8-byte one
    assert f'key {key1!r}: corrupt entry header (header length ' in str(err.value)
    assert not osp.exists(marker)


# ------------------------------------------------------------------ 2. bound to its key
def test_swapped_and_rotated_entries_are_refused_at_every_read(stores, tmp_path):
    """Entries moved between keys (a swap, a rotation of three) carry the teacher's map of
    another image or flip state (cosine to the live teacher measured below); each read of a
    moved entry is refused, naming the key it belongs to."""
    cache_dir = copy_store(stores, 'swapped', tmp_path)
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    writer = writer_of(model, cache_dir)
    keys = sorted(writer.keys())
    rotated, swapped = keys[1:4], keys[5:7]
    moves = dict(zip(rotated, rotated[1:] + rotated[:1]))
    moves.update({swapped[0]: swapped[1], swapped[1]: swapped[0]})
    raw = {k: writer._raw_get(k.encode()) for k in moves}
    maps = {k: writer.get(k).float() for k in moves}
    for src, dst in moves.items():
        writer._raw_put(dst.encode(), raw[src])
    writer.close()

    _, model = build_model(stores['cfg_a'], cache_dir)
    compute = make_sample_computer(model.teacher, model.data_preprocessor,
                                   model.teacher_features.plan, model.teacher_feature)
    dataset = {flip: DATASETS.build(dict(copy.deepcopy(cfg.train_dataloader.dataset),
                                         pipeline=recipe_pipeline(
                                             model.teacher_features.plan['loading'],
                                             model.teacher_features.plan['resizes'][0], flip)))
               for flip in (False, True)}
    metas = {sample_cache_key(d[i]['data_samples'].metainfo)[0]: d[i]['data_samples'].metainfo
             for d in dataset.values() for i in range(len(d))}
    for src, dst in moves.items():
        key, live = compute(metas[dst])
        assert key == dst
        cosine = compare_maps(maps[src], live)[0]
        assert cosine < 0.999  # what a moved entry would have served instead of the target
        with pytest.raises(CacheError) as err:
            model.teacher_cache.get(dst)
        assert (f'teacher cache {cache_dir}/data.mdb, key {dst!r}: the entry stored here '
                f'belongs to key {src!r} (a swapped or moved entry)') in str(err.value)


def test_verify_recomputes_from_the_sample_not_from_the_entry(stores, tmp_path):
    """An entry re-encoded under another key with a valid binding (what a careful forger or a
    buggy writer produces) passes every structural check; verify recomputes the key's entry from
    the training sample itself and names it. The first sample's entry matches (checked)."""
    cache_dir = copy_store(stores, 'reencoded', tmp_path)
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    inputs, samples = batch(cfg, model)
    key0, key1 = (sample_cache_key(s.metainfo)[0] for s in samples)
    writer = writer_of(model, cache_dir)
    other = next(k for k in sorted(writer.keys()) if k not in (key0, key1) and
                 k.endswith('|horizontal|96x128'))
    writer.put(key1, writer.get(other))  # another image's map, bound to key1
    writer.close()
    _, model = build_model(stores['cfg_a'], cache_dir, verify=2)
    model.train()
    with pytest.raises(CacheError) as err:
        model.loss(inputs, samples)
    message = str(err.value)
    assert f'teacher cache {cache_dir}/data.mdb, key {key1!r}: does not match the live ' \
           'teacher on that training sample' in message
    cosine = float(message.split('cosine ')[1].split(',')[0])
    assert cosine < 0.999
    assert model.teacher_features.checked == [key0]


# ------------------------------------------------------------------ 3. shape, dtype, store
def test_entries_of_another_store_shape_or_dtype_are_refused_at_every_read(stores, tmp_path):
    cache_dir = copy_store(stores, 'mixed', tmp_path)
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    inputs, samples = batch(cfg, model)
    key0, key1 = (sample_cache_key(s.metainfo)[0] for s in samples)
    writer = writer_of(model, cache_dir)
    keys = sorted(k for k in writer.keys() if k not in (key0, key1))
    env_b = lmdb.open(stores['B'], readonly=True, lock=False)
    with env_b.begin() as txn:  # teacher B's entry of the same image, copied byte for byte
        writer._raw_put(keys[0].encode(), txn.get(keys[0].encode()))
        hash_b = json.loads(txn.get(b'__identity__'))['hash']
    env_b.close()
    good = writer.get(keys[1])
    assert tuple(good.shape) == (64, 6, 8)
    writer.put(key0, good[:, :3, :4])  # a map of the wrong size (the old code zero-padded it)
    h = writer.identity['hash']
    writer._raw_put(keys[1].encode(), encode_entry(
        h, keys[1], torch.randint(-128, 127, (64, 6, 8), dtype=torch.int8).numpy()))
    writer._raw_put(keys[2].encode(), encode_entry(h, keys[2], good.double().numpy()))
    writer.close()

    _, model = build_model(stores['cfg_a'], cache_dir)
    cache = model.teacher_cache
    where = f'teacher cache {cache_dir}/data.mdb'
    expected = {
        keys[0]: f'{where}, key {keys[0]!r}: the entry belongs to another store (identity hash '
                 f'{hash_b[:12]}, this store {h[:12]}',
        keys[1]: f"{where}, key {keys[1]!r}: entry dtype 'int8' is not the store's dtype "
                 "'float16'",
        keys[2]: f"{where}, key {keys[2]!r}: entry dtype 'float64' is not the store's dtype "
                 "'float16'",
        key0: f"{where}, key {key0!r}: entry of shape (64, 3, 4), the teacher's map of this "
              'image is (64, 6, 8)',
    }
    for key, words in expected.items():
        with pytest.raises(CacheError) as err:
            cache.get(key)
        assert words in str(err.value), str(err.value)
    model.train()
    with pytest.raises(CacheError, match=r"entry of shape \(64, 3, 4\)"):
        model.loss(inputs, samples)  # the training step serves nothing from it
    # another teacher's whole store: refused at open, naming it and what differs
    with pytest.raises(CacheError) as err:
        build_model(stores['cfg_a'], stores['B'])
    assert f'teacher cache {stores["B"]}/data.mdb is stale: it was filled for another ' \
           'teacher_checkpoint' in str(err.value)


# ------------------------------------------------------------------ 4. changed under a job
@pytest.mark.parametrize('change', ['truncate', 'rewrite'])
def test_store_changed_under_a_running_job_stops_it_without_sigbus(stores, tmp_path, change):
    """A training job reads its store; then data.mdb is truncated to its two meta pages (the old
    code died of SIGBUS on the next read) or rewritten in place with teacher B's store (the old
    code trained on B's maps, exit 0). The next step stops, naming the store and the change."""
    cache_dir = copy_store(stores, change, tmp_path)
    data = f'{cache_dir}/data.mdb'
    size = osp.getsize(data)
    if change == 'truncate':
        action = f'os.truncate({data!r}, 8192)'
        words = f'size {size} -> 8192 bytes'
    else:
        action = (f'src = open({stores["B"] + "/data.mdb"!r}, "rb").read()\n'
                  f'fh = open({data!r}, "r+b"); fh.write(src); fh.truncate(); fh.close()')
        words = 'modified'
    proc = run_job(tmp_path, f'''
        cfg = Config.fromfile({stores["cfg_a"]!r})
        cfg.model.teacher_cache.update(dir={cache_dir!r})
        model = MODELS.build(cfg.model)
        inputs, samples = batch(cfg, model)
        model.train()
        model.loss(inputs, samples)
        print('STEP 1 OK', flush=True)
        {textwrap.indent(action, ' ' * 8).strip()}
        model.loss(inputs, samples)
        print('STEP 2 TRAINED')
    ''')
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert 'STEP 1 OK' in proc.stdout and 'STEP 2' not in proc.stdout
    assert f'REFUSED: teacher cache {data} changed while this job was reading it (' \
        in proc.stdout
    assert words in proc.stdout


def test_store_rewritten_with_same_size_and_mtime_is_still_refused(stores, tmp_path):
    """Teacher B's store copied over A's in place with A's mtime restored (same size, same LMDB
    transaction count, nothing for the change detector to see): every entry is bound to its
    store, so the first read is refused."""
    cache_dir = copy_store(stores, 'sneaky', tmp_path)
    data = f'{cache_dir}/data.mdb'
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    inputs, samples = batch(cfg, model)
    st = os.stat(data)
    src = open(f'{stores["B"]}/data.mdb', 'rb').read()
    assert len(src) == st.st_size
    with open(data, 'r+b') as fh:
        fh.write(src)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(CacheError) as err:
        model.teacher_cache.serve(samples, tuple(inputs.shape[-2:]), 16, 'cpu')
    key0 = sample_cache_key(samples[0].metainfo)[0]
    assert f'teacher cache {data}, key {key0!r}: the entry belongs to another store' \
        in str(err.value)


# ------------------------------------------------------------------ 6. clear messages
def test_bad_identity_records_and_headers_are_named(stores, tmp_path):
    cache_dir = copy_store(stores, 'identity', tmp_path)
    cfg, model = build_model(stores['cfg_a'], cache_dir)
    writer = writer_of(model, cache_dir)
    key = sorted(writer.keys())[0]
    for value, words in [
            (HEADER_LEN.pack(5) + b'[1, 2', 'corrupt entry header (not JSON: JSONDecodeError'),
            (HEADER_LEN.pack(3000) + b'[' * 3000,
             'corrupt entry header (not JSON: RecursionError'),
            (HEADER_LEN.pack(4) + b'[42]', 'corrupt entry header (a JSON list, not an '
                                           'object)'),
            (HEADER_LEN.pack(1 << 30) + b'{}', 'corrupt entry header (header length '
                                               '1073741824, entry of 10 bytes')]:
        writer._raw_put(key.encode(), value)
        with pytest.raises(CacheError) as err:
            writer.get(key)
        assert f'teacher cache {cache_dir}/data.mdb, key {key!r}: {words}' in str(err.value)
    for record, words in [(b'[1, 2]', 'is not a JSON object of strings (got a list)'),
                          (b'{"hash": ', 'is not valid JSON (JSONDecodeError'),
                          (b'\xff\xfe', 'is not valid JSON (UnicodeDecodeError')]:
        writer._raw_put(b'__identity__', record)
        with pytest.raises(CacheError) as err:
            build_model(stores['cfg_a'], cache_dir)
        assert f'teacher cache {cache_dir}/data.mdb: its identity record {words}' \
            in str(err.value)
    # a store of the previous format (its entries carry recipes): refused at open
    writer._raw_put(b'__identity__', json.dumps(dict(writer.identity, format='1',
                                                     hash='0' * 64)).encode())
    with pytest.raises(CacheError) as err:
        build_model(stores['cfg_a'], cache_dir)
    assert f"teacher cache {cache_dir}/data.mdb was written in cache format '1'; this code " \
           "reads format '3' only" in str(err.value)
    writer.close()
