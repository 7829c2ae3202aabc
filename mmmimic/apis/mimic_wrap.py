"""Mimic any mmdet student with one call: wrap its config into a ``FeatureMimicDistiller``.

``tools/train.py STUDENT_CONFIG --teacher TEACHER_CONFIG TEACHER_CKPT`` calls
:func:`wrap_with_teacher`; notebooks call it directly and hand the result to ``Runner.from_cfg``.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmdet.registry import MODELS

MIMIC_LOSSES = ('ProposalSampledL2Loss', 'PooledFeatureL2Loss', 'WholeFeatureL2Loss')


def choose_connector(student_stride: float, teacher_stride: float,
                     student_scale: float, student_strides: Sequence[float] = (),
                     teacher_strides: Sequence[float] = ()) -> str:
    """``Conv1x1Connector`` when the maps meet at the same stride in the teacher's pixels,
    ``Deconv2xConnector`` when the student's is twice as coarse.

    Args:
        student_stride / teacher_stride: strides of the mimicked maps on their own inputs.
        student_scale: the student's input scale.
        student_strides / teacher_strides: the strides of every map ``extract_feat`` returns,
            listed in the error so that the user can pick a pair.

    Raises:
        ValueError: no connector bridges the strides (names them, and the flags that fix it).
    """
    effective = student_stride / student_scale
    if effective == teacher_stride:
        return 'Conv1x1Connector'
    if effective == 2 * teacher_stride:
        return 'Deconv2xConnector'

    def listing(name, strides):
        return f' The {name} maps (index: stride) are ' + ', '.join(
            f'{i}: {st:g}' for i, st in enumerate(strides)) + '.' if strides else ''

    raise ValueError(
        f'no connector bridges the maps: the student map has stride {student_stride:g} on its '
        f'input (scale {student_scale:g}), i.e. {effective:g} in the teacher\'s pixels, and the '
        f'teacher map has stride {teacher_stride:g}. A 1x1 connector needs equal strides, a '
        'deconv connector a factor 2.' + listing('student', student_strides) +
        listing('teacher', teacher_strides) + ' Mimic another pair of maps with '
        '--mimic-student-feature / --mimic-teacher-feature (wrap_with_teacher(student_feature=, '
        'teacher_feature=)), give the student a deconv neck (Deconv2xNeck), or change '
        '--student-scale.')


def _load_config(config: Union[str, Config], what: str) -> Config:
    """A copy of ``config``, or the config file it names: a path or a package-scoped path
    such as ``mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py`` (the installed package's own
    config, :func:`~mmmimic.models.distillers.teacher.config_file`)."""
    from mmmimic.models.distillers.teacher import config_file
    if isinstance(config, Config):
        return copy.deepcopy(config)
    if not isinstance(config, str):
        raise FileNotFoundError(f'{what} config not found: {config}')
    return Config.fromfile(config_file(config, f'{what} config'))


def wrap_with_teacher(cfg: Union[str, Config],
                      teacher_cfg: Union[str, Config],
                      teacher_ckpt: str,
                      mimic_weight: float = 1.0,
                      mimic_loss: str = 'ProposalSampledL2Loss',
                      student_scale: Optional[float] = None,
                      teacher_check: bool = True,
                      teacher_check_images: int = 20,
                      student_feature: Optional[int] = None,
                      teacher_feature: Optional[int] = None,
                      mimic_levels: Union[None, str, List[dict]] = None) -> Config:
    """A copy of ``cfg`` whose model is a ``FeatureMimicDistiller`` of ``cfg.model``.

    A student whose ``extract_feat`` returns several maps (an FPN) mimics a pyramid: every
    student level that has a teacher level of the same stride in the teacher's pixels
    (:func:`~mmmimic.models.distillers.pyramid.auto_pairs`), written into the config as
    ``mimic_levels``, the pairing table printed (``mimic_levels`` / ``--mimic-levels S:T,S:T``
    overrides the pairs). A single-level student, or one given ``student_feature`` /
    ``teacher_feature``, mimics one pair: ``extract_feat(...)[student_feature]`` of the student
    and ``[teacher_feature]`` of the teacher (default: the last map of each); the connector
    is chosen from their measured channels and strides (:func:`choose_connector`); with
    ``student_scale`` the mimic is cross-scale (the student sees the batch resized by that
    factor). The teacher's model config is embedded, so the returned (and dumped) config is a
    complete, rerunnable distiller config. With ``teacher_check`` a :class:`TeacherCheckHook`
    scores the teacher on ``teacher_check_images`` validation images before the first iteration.
    An :class:`RNGStateHook` is added when the config has none (mmdet's runtime configs do not),
    so that ``--resume`` continues bit for bit.

    Args:
        cfg: the student's training config (or its path).
        teacher_cfg: the teacher's config (or its path); its ``model`` is used.
        teacher_ckpt: the teacher's trained checkpoint.
        mimic_weight: lambda_1, the mimic loss weight (>= 0).
        mimic_loss: one of :data:`MIMIC_LOSSES`.
        student_scale: cross-scale mimic factor (e.g. 0.5); None: same input.
        teacher_check: add the teacher check (needs ``val_dataloader``/``val_evaluator``).
        teacher_check_images: validation images the check scores.
        student_feature / teacher_feature: index of the mimicked map in each network's
            ``extract_feat`` output (``--mimic-student-feature`` / ``--mimic-teacher-feature``);
            ``None``: the last map (and, for a multi-level student, pyramid mimic instead).
        mimic_levels: the level pairs of pyramid mimic: ``'auto'``, ``'S:T,S:T'``
            (``--mimic-levels``) or ``[dict(student=S, teacher=T), ...]``; ``None``: automatic
            for a multi-level student without ``student_feature`` / ``teacher_feature``.

    Raises:
        FileNotFoundError: a config or the checkpoint is missing (names it).
        ValueError / TypeError: the student has no RPN, the networks normalise differently, no
            connector bridges the strides, an unknown loss, a negative weight, a missing val
            evaluator for the check (each message names the culprit and the fix).
    """
    from mmmimic.models.distillers.checks import check_normalisation, check_student_rpn
    cfg = _load_config(cfg, 'student')
    teacher_full = _load_config(teacher_cfg, 'teacher (--teacher)')
    if not isinstance(teacher_ckpt, str) or not osp.isfile(teacher_ckpt):
        raise FileNotFoundError(f'teacher checkpoint (--teacher) not found: {teacher_ckpt}')
    if cfg.model.get('type') == 'FeatureMimicDistiller':
        raise ValueError('the config is already a FeatureMimicDistiller config; --teacher wraps '
                         'a plain student config')
    if mimic_loss not in MIMIC_LOSSES:
        raise ValueError(f'unknown mimic loss {mimic_loss!r}; choose one of {MIMIC_LOSSES}')
    if not mimic_weight >= 0:
        raise ValueError(f'the mimic weight must be >= 0, got {mimic_weight}')
    scale = 1.0 if student_scale is None else float(student_scale)
    if not 0 < scale <= 1:
        raise ValueError(f'--student-scale must be in (0, 1], got {student_scale}')
    if teacher_check and (cfg.get('val_dataloader') is None or
                          cfg.get('val_evaluator') is None):
        raise KeyError('the teacher check scores the teacher with the val evaluator, but the '
                       'student config has no val_dataloader/val_evaluator: add them, or pass '
                       '--no-teacher-check (teacher_check=False)')

    student_model = copy.deepcopy(cfg.model)
    teacher_model = copy.deepcopy(teacher_full.model)
    check_normalisation(
        student_model.get('data_preprocessor'), teacher_model.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        student = MODELS.build(copy.deepcopy(student_model))
        check_student_rpn(student)  # no RPN, or one it cannot run
        if scale != 1.0:
            _pad_for_scale(student_model, student, scale)
        teacher = MODELS.build(copy.deepcopy(teacher_model))
        levels = _pyramid_request(student, student_feature, teacher_feature, mimic_levels)
        if levels is not None:
            levels = choose_pairs(student, teacher, levels, scale)
        student_feature = -1 if student_feature is None else student_feature
        teacher_feature = -1 if teacher_feature is None else teacher_feature
        if levels is None:
            s_stride, s_count = _measure(student, student_feature, 'student')
            t_stride, t_count = _measure(teacher, teacher_feature, 'teacher')
            connector = _single_connector(student, teacher, s_stride, s_count, t_stride,
                                          t_count, scale)

    if levels is None:
        model_keys = dict(student_feature=int(student_feature),
                          teacher_feature=int(teacher_feature), connector=dict(type=connector))
    else:
        model_keys = dict(connector=dict(type='Conv1x1Connector'), mimic_levels=levels)
    cfg.model = ConfigDict(
        type='FeatureMimicDistiller',
        student=student_model,
        teacher=teacher_model,
        teacher_ckpt=osp.abspath(teacher_ckpt),
        **model_keys,
        mimic_loss=dict(type=mimic_loss, loss_weight=float(mimic_weight)),
        student_input_scale=scale)
    cfg.teacher_config = osp.abspath(teacher_full.filename) if teacher_full.filename else None
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'TeacherCheckHook']
    if not any(h.get('type') in ('RNGStateHook', 'mmdet.RNGStateHook') for h in hooks):
        hooks.append(dict(type='RNGStateHook'))  # exact resume for mmdet's own runtime configs
    if teacher_check:
        hooks.append(dict(type='TeacherCheckHook', num_images=teacher_check_images))
    cfg.custom_hooks = hooks
    return cfg


def parse_mimic_levels(text: str) -> Union[str, List[dict]]:
    """``--mimic-levels``: ``'auto'`` or ``'S:T,S:T'`` -> ``[dict(student=S, teacher=T)]``.

    Raises:
        ValueError: a malformed pair (names it and the expected form).
    """
    if text == 'auto':
        return text
    pairs = []
    for item in text.split(','):
        parts = item.strip().split(':')
        try:
            student, teacher = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f'--mimic-levels: {item!r} is not STUDENT:TEACHER (two level '
                             'indices, e.g. --mimic-levels 0:1,1:2 or auto)') from None
        pairs.append(dict(student=student, teacher=teacher))
    return pairs


def _pyramid_request(student, student_feature, teacher_feature, mimic_levels):
    """The requested ``mimic_levels`` (parsed), ``'auto'`` for a multi-level student given
    no feature index, else ``None`` (one pair)."""
    from mmmimic.models.distillers.pyramid import measure_feature_maps
    if mimic_levels is not None:
        if student_feature is not None or teacher_feature is not None:
            raise ValueError('--mimic-levels (mimic_levels) gives the level pairs; '
                             '--mimic-student-feature / --mimic-teacher-feature select a single '
                             'pair: give one or the other')
        return parse_mimic_levels(mimic_levels) if isinstance(mimic_levels, str) \
            else [dict(p) for p in mimic_levels]
    if student_feature is None and teacher_feature is None and \
            len(measure_feature_maps(student)) > 1:
        return 'auto'
    return None


def choose_pairs(student, teacher, mimic_levels: Union[str, List[dict]],
                 scale: float) -> List[dict]:
    """The level pairs written into the distiller's config, the pairing table printed.

    Pairs meet at equal strides in the teacher's pixels (``Conv1x1Connector``); an explicit
    pair whose student stride is twice as coarse gets a ``Deconv2xConnector``.

    Raises:
        ValueError: an index out of range, no pair, strides that do not meet, a neck that
            returns another number of levels than its config says (each names the levels,
            strides and channels).
    """
    from mmmimic.models.distillers import pyramid
    pairs, student_maps, teacher_maps = pyramid.measure_and_pair(
        student, teacher, mimic_levels, scale,
        parse_hint=(' (--mimic-levels S:T,S:T gives the pairs; '
                    '--mimic-student-feature / --mimic-teacher-feature one pair)'))
    levels, connector_types = [], []
    for k, pair in enumerate(pairs):
        s_map, t_map = student_maps[pair['student']], teacher_maps[pair['teacher']]
        upsample = 2 if s_map[1] / scale == 2 * t_map[1] else 1
        pyramid.check_pair_strides(f'mimic_levels[{k}]', s_map, t_map,
                                   (pair['student'], pair['teacher']), scale, upsample)
        connector = 'Deconv2xConnector' if upsample == 2 else 'Conv1x1Connector'
        level = dict(student=pair['student'], teacher=pair['teacher'])
        if upsample == 2:
            level['connector'] = dict(type=connector)
        levels.append(level)
        connector_types.append(connector)
    print_log(pyramid.describe_pairs(pairs, student_maps, teacher_maps, connector_types, scale),
              logger='current')
    return levels


def _single_connector(student, teacher, s_stride, s_count, t_stride, t_count,
                      scale: float) -> str:
    """The connector of the single pair (:func:`choose_connector`; its error lists every
    map's stride)."""
    from mmmimic.models.distillers.pyramid import measure_feature_maps
    try:
        return choose_connector(s_stride, t_stride, scale)
    except ValueError:  # again, listing every map's stride so that the user can pick a pair
        return choose_connector(
            s_stride, t_stride, scale,
            [stride for _, stride in measure_feature_maps(student)],
            [stride for _, stride in measure_feature_maps(teacher)])


def _measure(detector, index: int, name: str):
    """``(stride of map index, number of maps)`` of ``detector.extract_feat``."""
    from mmmimic.models.distillers.checks import measure_feature_map
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f'--mimic-{name}-feature ({name}_feature) must be an int index into '
                        f'extract_feat\'s maps, got {index!r}')
    try:
        _, stride, count = measure_feature_map(detector, index, name)
    except ValueError as e:
        raise ValueError(f'--mimic-{name}-feature: {e}') from None
    return stride, count


def _pad_for_scale(student_model: ConfigDict, student, scale: float) -> None:
    """At ``--student-scale`` the student sees the padded batch resized: pad it to a multiple of
    the student backbone's coarsest stride / scale, so that the resized batch holds whole cells
    at every backbone level (a PAFPN's upsample-and-concat, YOLOX's and RTMDet's necks, fails on
    a half cell; seen with YOLOX's 416x416 validation input at scale 0.5; the extra levels that
    FPNs add by strided convolutions take any size). Raises ``pad_size_divisor`` in the
    student's ``data_preprocessor`` (the distiller's) when needed, and says so."""
    import math

    from mmmimic.models.distillers.pyramid import backbone_coarsest_stride
    coarsest = backbone_coarsest_stride(student)
    needed = coarsest / scale
    dp = student_model.get('data_preprocessor')
    if dp is None or not float(needed).is_integer():
        return
    # the padding, and the batch resizes that follow it (YOLOX's BatchSyncRandomResize)
    slots = [(dp, 'pad_size_divisor', 'data_preprocessor.pad_size_divisor')] + [
        (aug, 'size_divisor', f'data_preprocessor.batch_augments[{i}].size_divisor')
        for i, aug in enumerate(dp.get('batch_augments') or []) if 'size_divisor' in aug]
    for owner, key, name in slots:
        divisor = int(owner.get(key, 1))
        padded = math.lcm(divisor, int(needed))
        if padded != divisor:
            owner[key] = padded
            print_log(f'--student-scale {scale:g}: {name} {divisor} -> {padded} (the student '
                      f'backbone\'s coarsest stride {coarsest:g} / {scale:g}), so the resized '
                      'batch keeps whole cells at every level', logger='current')
