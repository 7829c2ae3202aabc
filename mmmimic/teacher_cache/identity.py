"""What a teacher cache and its entries are bound to: the store's identity (hashes of everything
the cached maps depend on) and the entry keys (image path, flip state, resized shape)."""
import hashlib
import json
from typing import Dict, Optional, Sequence, Tuple

from mmengine.config import ConfigDict

#: 3: safetensors entries (format 2: a hand-packed JSON header + raw bytes; format 1: with a
#: recipe). A store of another format is refused at open with the command that rebuilds it.
#: Pyramid stores are format 3 too: their identity names their levels (``teacher_levels``), and
#: their entries hold one tensor per level; single-map stores did not change.
CACHE_FORMAT = 3
#: data-preprocessor keys that change the teacher's input
PREPROCESS_KEYS = ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr', 'pad_size_divisor', 'pad_value')
MAX_IDENTITY = 1 << 16  # bytes of the identity record
#: what tells a user how to rebuild a store
REFILL = ('python tools/cache_teacher_features.py CONFIG (into a new teacher_cache.dir, or with '
          '--overwrite)')


class CacheError(RuntimeError):
    """A cache that cannot serve: stale identity, missing entry, corrupt or truncated file."""


def plain(obj):
    """Config objects as plain, JSON-able, order-independent data."""
    if isinstance(obj, ConfigDict):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def sha256_of(obj) -> str:
    """SHA-256 of :func:`plain` ``obj`` as sorted JSON."""
    return hashlib.sha256(json.dumps(plain(obj), sort_keys=True).encode()).hexdigest()


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the teacher checkpoint's identity)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def cache_identity(teacher_cfg: dict, teacher_ckpt: str, teacher_feature: int,
                   data_preprocessor: dict, pipeline: Sequence[dict], dtype: str,
                   levels: Optional[Sequence[Tuple[int, int]]] = None) -> Dict[str, str]:
    """Hashes of everything the cached maps depend on, one per component plus their combination.

    Args:
        teacher_cfg: the teacher's model config.
        teacher_ckpt: path of the teacher checkpoint (its file bytes are hashed).
        teacher_feature: index of the cached map in ``teacher.extract_feat(...)`` (a store of
            one map; ignored with ``levels``).
        data_preprocessor: the distiller's data preprocessor config (mean, std, channel order,
            padding are hashed).
        pipeline: the training pipeline up to the cached point (see
            :func:`~mmmimic.teacher_cache.pipeline.plan_cache_pipeline`).
        dtype: storage dtype.
        levels: pyramid mimic: ``[(teacher level index, stride), ...]`` of every cached level
            (:func:`~.levels.cached_levels`); the component ``teacher_levels``
            (:func:`levels_record`) replaces ``teacher_feature``. ``None``: one map.

    Returns:
        ``{component: sha256 or value, ..., 'hash': sha256 of all}``.
    """
    dp = dict(data_preprocessor or {})
    what = dict(teacher_feature=str(int(teacher_feature))) if levels is None else \
        dict(teacher_levels=levels_record(levels))
    identity = dict(
        format=str(CACHE_FORMAT),
        teacher_config=sha256_of(teacher_cfg),
        teacher_checkpoint=file_sha256(teacher_ckpt),
        **what,
        normalisation=sha256_of({k: dp.get(k) for k in PREPROCESS_KEYS}),
        pipeline=sha256_of(list(pipeline)),
        dtype=dtype)
    identity['hash'] = sha256_of(identity)
    return identity


def levels_record(levels: Sequence[Tuple[int, int]]) -> str:
    """The identity component ``teacher_levels`` of a level set: ``'0@4,1@8'``
    (index@stride, index order)."""
    return ','.join(f'{int(j)}@{int(s)}' for j, s in levels)


def describe_levels(identity: dict) -> str:
    """What an identity record says the store holds (for messages; values shortened)."""
    if 'teacher_levels' in identity:
        return (f'teacher levels {str(identity["teacher_levels"])[:120]} (index@stride, one '
                'tensor each)')
    return f'the single teacher map teacher_feature={str(identity.get("teacher_feature"))[:12]}'


def parse_identity(raw: bytes, file: str) -> Dict[str, str]:
    """The stored identity record as ``{component: str}``; anything else is refused, naming
    the file (a list, other JSON, an oversized or undecodable record)."""
    where = f'teacher cache {file}: its identity record'
    if len(raw) > MAX_IDENTITY:
        raise CacheError(f'{where} is {len(raw)} bytes (at most {MAX_IDENTITY}); not a '
                         'teacher cache')
    try:
        stored = json.loads(raw.decode('utf-8'))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError
        raise CacheError(f'{where} is not valid JSON ({type(err).__name__}: {err})') from None
    if not isinstance(stored, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in stored.items()):
        raise CacheError(f'{where} is not a JSON object of strings (got a '
                         f'{type(stored).__name__}); not a teacher cache this code wrote')
    if 'hash' not in stored:
        raise CacheError(f'{where} has no "hash"; not a teacher cache this code wrote')
    return stored


def identity_mismatch(file: str, stored: dict, current: dict, hint: str = '') -> CacheError:
    """The refusal of a store whose identity is not ``current``: another cache format (with the
    command that rebuilds it), or the components that differ."""
    differ = sorted(k for k in set(stored) | set(current)
                    if k != 'hash' and stored.get(k) != current.get(k))
    if 'format' in differ:
        return CacheError(f'teacher cache {file} was written in cache format '
                          f'{str(stored.get("format"))[:12]!r}; this code reads format '
                          f'{current.get("format")!r} only (safetensors entries bound to their '
                          f'key and store): rebuild it with {REFILL}' + hint)
    levels = ''
    if {'teacher_feature', 'teacher_levels'} & set(differ):
        levels = (f': it holds {describe_levels(stored)}, this model mimics '
                  f'{describe_levels(current)}')
    return CacheError(f'teacher cache {file} is stale: it was filled for another '
                      f'{", ".join(differ) or "identity"} (stored hash '
                      f'{str(stored.get("hash"))[:12]}, current {current["hash"][:12]}){levels}; '
                      'refill it with tools/cache_teacher_features.py into a new dir' + hint)


def cache_key(img_path: str, flip_direction: Optional[str], shape: Sequence[int]) -> str:
    """The entry key: image path, flip state (``'none'`` or the direction), resized ``h x w``."""
    return f'{img_path}|{flip_direction or "none"}|{int(shape[0])}x{int(shape[1])}'


def sample_cache_key(metainfo: dict) -> Tuple[str, Tuple[int, int]]:
    """The key of a training data sample's entry and the crop offset ``(x, y)`` to serve.

    Raises:
        CacheError: the data sample lacks a meta key the cache needs (named).
    """
    for name in ('img_path', 'img_shape'):
        if name not in metainfo:
            raise CacheError(f'teacher cache: the data sample has no {name!r} meta key; '
                             f'PackDetInputs must keep it (meta_keys)')
    flip = metainfo.get('flip_direction') if metainfo.get('flip', False) else None
    shape = metainfo.get('precrop_shape', metainfo['img_shape'])
    offset = tuple(metainfo.get('crop_offset', (0, 0)))
    return cache_key(metainfo['img_path'], flip, shape), offset


def key_shape(key: str) -> Optional[Tuple[int, int]]:
    """``(h, w)`` of a :func:`cache_key` (its last field ``HxW``), or ``None``."""
    parts = key.rsplit('|', 1)[-1].split('x')
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])
