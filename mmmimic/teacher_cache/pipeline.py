"""Which training pipelines the teacher cache can represent, and the deterministic pipeline of
each augmentation state it stores (loading, one resize from a fixed set, a flip state)."""
import copy
from typing import List, Sequence

from .identity import plain

# Pipeline steps before the cached point that do not change the pixels the teacher sees.
LOADING = ('LoadImageFromFile', 'LoadAnnotations', 'FilterAnnotations')
# Why each refused transform cannot be cached, and what to use instead.
REFUSED = {
    'RandomResize': 'draws arbitrary sizes; use RandomChoiceResize with a fixed list of scales',
    'RandomCrop': 'crops at any pixel offset; use StrideAlignedRandomCrop (offsets that are '
                  'multiples of the teacher stride)',
    'PhotoMetricDistortion': 'changes the pixels the teacher sees at random; drop it or train '
                             'with the live teacher (teacher_cache=None)',
}
DATA_SAMPLE_META = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction')


def plan_cache_pipeline(pipeline: Sequence[dict], stride: int) -> dict:
    """Check that the cache can represent every augmentation of ``pipeline`` and split it.

    Accepted, in this order: loading steps (``LoadImageFromFile``, ``LoadAnnotations``,
    ``FilterAnnotations``); optionally one ``Resize`` (fixed scale) or ``RandomChoiceResize`` (a
    fixed list of scales); optionally ``RandomFlip`` (horizontal); optionally
    ``StrideAlignedRandomCrop`` (after the flip, so its offset is in the flipped image)
    with this ``stride``; ``PackDetInputs`` (with ``crop_offset`` and ``precrop_shape`` in its
    ``meta_keys`` when cropping).

    Args:
        pipeline: the training pipeline (list of transform configs).
        stride: the teacher map's stride.

    Returns:
        ``dict(loading=[...], resizes=[one Resize config per scale, or [None]], flip=bool,
        crop=cfg|None,
        cached=[...])``; ``cached`` is the pipeline up to the cached point, hashed into the
        identity.

    Raises:
        ValueError: a transform the cache cannot represent, or one out of order (names it and
            the alternative).
    """
    steps = [dict(plain(t)) for t in pipeline]
    plan = dict(loading=[], resizes=[], flip=False, crop=None)
    stage = 0  # 0 loading, 1 resized, 2 flipped, 3 cropped, 4 packed
    for step in steps:
        kind = step.get('type')
        where = f'teacher_cache: pipeline step {kind!r}'
        if kind in REFUSED:
            raise ValueError(f'{where} {REFUSED[kind]}')
        if kind in LOADING and stage == 0:
            plan['loading'].append(step)
        elif kind == 'Resize' and stage == 0:
            if step.get('scale') is None:
                raise ValueError(f'{where} needs a fixed scale (scale_factor resizing is not '
                                 'keyed by the cache)')
            plan['resizes'] = [step]
            stage = 1
        elif kind == 'RandomChoiceResize' and stage == 0:
            scales = step.get('scales')
            if not scales:
                raise ValueError(f'{where} needs a fixed list of scales')
            plan['resizes'] = [
                dict(type='Resize', scale=tuple(s), keep_ratio=step.get('keep_ratio', True))
                for s in scales]
            stage = 1
        elif kind == 'RandomFlip' and stage <= 1:
            direction = step.get('direction', 'horizontal')
            if direction not in ('horizontal', ['horizontal']):
                raise ValueError(f'{where} direction {direction!r}: only horizontal flips are '
                                 'cached; use RandomFlip(direction="horizontal")')
            plan['flip'] = True
            stage = 2
        elif kind == 'StrideAlignedRandomCrop' and stage <= 2:
            if step.get('stride', 16) != stride:
                raise ValueError(f'{where} stride={step.get("stride", 16)} but the teacher map '
                                 f'has stride {stride}; set stride={stride}')
            plan['crop'] = step
            stage = 3
        elif kind == 'PackDetInputs':
            meta = step.get('meta_keys', DATA_SAMPLE_META)
            need = ['img_path', 'img_shape', 'flip', 'flip_direction']
            if plan['crop'] is not None:
                need += ['crop_offset', 'precrop_shape']
            lacking = [k for k in need if k not in meta]
            if lacking:
                raise ValueError(f'{where} meta_keys lack {lacking}, which the teacher cache '
                                 'needs to find each sample\'s entry')
            stage = 4
        elif kind == 'RandomFlip' or kind == 'StrideAlignedRandomCrop' or kind in LOADING:
            raise ValueError(f'{where} is out of order: the cache needs loading, one resize '
                             '(Resize or RandomChoiceResize), RandomFlip, '
                             'StrideAlignedRandomCrop, PackDetInputs')
        else:
            raise ValueError(f'{where} is not supported with the teacher cache (it cannot key or '
                             'serve its effect on the teacher\'s input); remove it or train with '
                             'the live teacher (teacher_cache=None)')
    if stage != 4:
        raise ValueError('teacher_cache: the pipeline needs a final PackDetInputs')
    if not plan['resizes']:
        plan['resizes'] = [None]  # images at their own size
    plan['cached'] = plan['loading'] + [dict(type='CachedResizes', resizes=plan['resizes']),
                                        dict(type='CachedFlip', on=plan['flip'])]
    return plan


def recipe_pipeline(plan_loading: Sequence[dict], resize: dict, flip: bool,
                    with_annotations: bool = True) -> List[dict]:
    """The deterministic pipeline of one augmentation state: loading, the resize, the flip (with
    prob 1) and ``PackDetInputs`` keeping the meta the cache keys on."""
    steps = [copy.deepcopy(t) for t in plan_loading
             if with_annotations or t['type'] == 'LoadImageFromFile']
    if resize is not None:
        resize = copy.deepcopy(dict(resize))
        if isinstance(resize.get('scale'), list):  # plain() turns tuples to lists
            resize['scale'] = tuple(resize['scale'])
        steps.append(resize)
    if flip:
        steps.append(dict(type='RandomFlip', prob=1.0, direction='horizontal'))
    steps.append(dict(type='PackDetInputs', meta_keys=DATA_SAMPLE_META))
    return steps
