"""Pyramid mimic: pairs of (student level, teacher level), paired by stride, and the rule that
gives each sampled RoI its level(s) (docs/advanced_guides/distiller.md, "Pyramids").

Strides are measured on the built networks (:func:`measure_feature_maps`), never read from
configs. A student level of stride ``s`` on its input (resized by ``student_input_scale``) has
stride ``s / scale`` in the teacher's pixels and pairs with the teacher level of that stride: at
scale 0.5 student ``P_k`` pairs with teacher ``P_{k+1}`` (a level shift, no deconv).
"""
import copy
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmmimic.utils.tables import markdown_table

#: mmdet's ``SingleRoIExtractor`` default: a RoI of scale < 112 goes to the finest level
FINEST_SCALE = 56
#: the RoI-to-level rules (besides a fixed pair index)
LEVEL_RULES = ('scale', 'all')

MapInfo = Tuple[int, float]  # (channels, stride in the network's own input pixels)


@torch.no_grad()
def measure_feature_maps(detector: nn.Module, size: int = 256) -> List[MapInfo]:
    """``(channels, stride)`` of every map ``detector.extract_feat`` returns, measured on one
    blank ``size x size`` input in eval mode."""
    was_training = detector.training
    detector.eval()
    param = next(detector.parameters())
    feats = detector.extract_feat(param.new_zeros(1, 3, size, size))
    detector.train(was_training)
    return [(int(f.shape[1]), size / f.shape[-1]) for f in feats]


@torch.no_grad()
def backbone_coarsest_stride(detector: nn.Module, size: int = 256) -> float:
    """The coarsest stride among the maps ``detector.backbone`` returns (measured on one blank
    ``size x size`` input in eval mode): what a batch resized for the student must stay a
    multiple of at every backbone level (the extra levels FPNs add by strided convolutions take
    any size)."""
    was_training = detector.training
    detector.eval()
    maps = detector.backbone(next(detector.parameters()).new_zeros(1, 3, size, size))
    detector.train(was_training)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    return max(size / m.shape[-1] for m in maps)


def _listing(maps: Sequence[MapInfo]) -> str:
    return ', '.join(f'{i}: stride {s:g}, {c} ch' for i, (c, s) in enumerate(maps))


def check_declared_levels(detector: nn.Module, maps: Sequence[MapInfo], name: str) -> None:
    """The neck must return as many levels as its config says (``num_outs``).

    Raises:
        ValueError: names the network, the neck, both counts and the measured levels.
    """
    neck = getattr(detector, 'neck', None)
    declared = getattr(neck, 'num_outs', None)
    if declared is not None and int(declared) != len(maps):
        raise ValueError(
            f'mimic_levels: the {name} neck {type(neck).__name__} has num_outs={declared} in its '
            f'config but extract_feat returns {len(maps)} level(s) ({_listing(maps)}); fix the '
            f'{name} neck or its num_outs')


def auto_pairs(student_maps: Sequence[MapInfo], teacher_maps: Sequence[MapInfo],
               scale: float) -> List[Tuple[int, int]]:
    """Every student level that has a teacher level of the same stride in the teacher's pixels
    (``student stride / scale``), as ``(student level, teacher level)`` in stride order.

    Raises:
        ValueError: no pair (names the scale, both networks' strides and channels).
    """
    pairs = []
    for i, (_, s_stride) in enumerate(student_maps):
        match = [j for j, (_, t_stride) in enumerate(teacher_maps)
                 if t_stride == s_stride / scale]
        if match:
            pairs.append((i, match[0]))
    if not pairs:
        raise ValueError(
            f'mimic_levels=\'auto\': student_input_scale={scale:g} leaves no pair: no student '
            f'level has a teacher level of its stride / {scale:g}. Student levels: '
            f'{_listing(student_maps)}; teacher levels: {_listing(teacher_maps)}. Pair levels '
            'yourself with a Deconv2xConnector (mimic_levels=[dict(student=i, teacher=j, '
            'connector=dict(type=\'Deconv2xConnector\'))]) or change the scale')
    return pairs


def _index(key: str, index, maps: Sequence[MapInfo], name: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f'{key} must be an int level index, got {index!r}')
    if not -len(maps) <= index < len(maps):
        raise ValueError(f'{key}={index} is out of range: the {name} has {len(maps)} level(s) '
                         f'({_listing(maps)}; valid: {-len(maps)}..{len(maps) - 1})')
    return index % len(maps)


def parse_pairs(mimic_levels: Union[str, Sequence[dict]], student_maps: Sequence[MapInfo],
                teacher_maps: Sequence[MapInfo], scale: float) -> List[dict]:
    """The pairs of ``mimic_levels`` (``'auto'`` or ``[dict(student=i, teacher=j[,
    connector=...]), ...]``), indices made non-negative, ordered by the student's stride.

    Returns:
        ``[dict(student=i, teacher=j, connector=cfg or None)]``.

    Raises:
        ValueError / TypeError: an unknown key, an index out of range, a student level listed
        twice (each names ``mimic_levels[k]``, the levels, strides and channels).
    """
    if isinstance(mimic_levels, str):
        if mimic_levels != 'auto':
            raise ValueError(f'mimic_levels must be \'auto\' or a list of dict(student=i, '
                             f'teacher=j), got {mimic_levels!r}')
        return [dict(student=i, teacher=j, connector=None)
                for i, j in auto_pairs(student_maps, teacher_maps, scale)]
    if not isinstance(mimic_levels, (list, tuple)) or not mimic_levels:
        raise ValueError('mimic_levels must be \'auto\' or a non-empty list of '
                         f'dict(student=i, teacher=j), got {mimic_levels!r}')
    pairs = []
    for k, pair in enumerate(mimic_levels):
        key = f'mimic_levels[{k}]'
        if not isinstance(pair, dict) or {'student', 'teacher'} - set(pair) or \
                set(pair) - {'student', 'teacher', 'connector'}:
            raise ValueError(f'{key} must be dict(student=i, teacher=j[, connector=cfg]), '
                             f'got {pair!r}')
        pairs.append(dict(
            student=_index(f'{key}.student', pair['student'], student_maps, 'student'),
            teacher=_index(f'{key}.teacher', pair['teacher'], teacher_maps, 'teacher'),
            connector=copy.deepcopy(pair.get('connector'))))
    levels = [p['student'] for p in pairs]
    if len(set(levels)) != len(levels):
        raise ValueError(f'mimic_levels lists a student level twice ({levels}): each RoI '
                         'level is one student level')
    return sorted(pairs, key=lambda p: (student_maps[p['student']][1], p['student']))


def check_pair_strides(key: str, s_map: MapInfo, t_map: MapInfo, levels: Tuple[int, int],
                       scale: float, upsample: float) -> None:
    """A pair's maps must meet at one stride in the teacher's pixels.

    Raises:
        ValueError: names the pair, both levels, strides, channels, the scale and the
            connector's upsampling.
    """
    effective = s_map[1] / scale / upsample
    if effective != t_map[1]:
        raise ValueError(
            f'{key}: student level {levels[0]} (stride {s_map[1]:g}, {s_map[0]} channels) at '
            f'input scale {scale:g} with a x{upsample:g} connector has stride {effective:g} in '
            f'the teacher\'s pixels, but teacher level {levels[1]} has stride {t_map[1]:g} '
            f'({t_map[0]} channels); pair levels of equal stride (mimic_levels=\'auto\')')


def check_mimic_input(mimic_input: Optional[str], loss_name: str) -> None:
    """Pyramid mimic compares sampled RoIs per level: refuse a loss that does not."""
    if mimic_input != 'rois':
        raise ValueError(f'mimic_levels: pyramid mimic compares sampled RoIs per level; '
                         f'mimic_loss {loss_name} has mimic_input '
                         f'{mimic_input!r}: use ProposalSampledL2Loss or '
                         'PooledFeatureL2Loss, or remove mimic_levels')


def measure_and_pair(student: nn.Module, teacher: nn.Module,
                     mimic_levels: Union[str, Sequence[dict]], student_input_scale: float,
                     parse_hint: str = '') -> Tuple[List[dict], List[MapInfo], List[MapInfo]]:
    """Measure every level of both networks, check each neck's declared level count and pair
    the levels (:func:`parse_pairs`; ``parse_hint`` is appended to its errors).

    Returns:
        ``(pairs, student_maps, teacher_maps)``.
    """
    student_maps = measure_feature_maps(student)
    teacher_maps = measure_feature_maps(teacher)
    check_declared_levels(student, student_maps, 'student')
    check_declared_levels(teacher, teacher_maps, 'teacher')
    try:
        pairs = parse_pairs(mimic_levels, student_maps, teacher_maps, student_input_scale)
    except ValueError as err:
        if not parse_hint:
            raise
        raise ValueError(f'{err}{parse_hint}') from None
    return pairs, student_maps, teacher_maps


def describe_pairs(pairs: List[dict], student_maps: Sequence[MapInfo],
                   teacher_maps: Sequence[MapInfo], connector_types: Sequence[str],
                   scale: float) -> str:
    """Record each pair's measured strides, channels and connector type in the pair, and return
    the pairing table (with the student levels left without a pair)."""
    for pair, connector_type in zip(pairs, connector_types):
        (s_ch, s_stride), (t_ch, t_stride) = (student_maps[pair['student']],
                                              teacher_maps[pair['teacher']])
        pair.update(student_stride=s_stride, student_channels=s_ch, teacher_stride=t_stride,
                    teacher_channels=t_ch, connector_type=connector_type)
    paired = {p['student'] for p in pairs}
    unpaired = [(i, st, ch) for i, (ch, st) in enumerate(student_maps) if i not in paired]
    return pairing_table(pairs, scale, unpaired)


def build_pairs(student: nn.Module, teacher: nn.Module, mimic_levels: Union[str, Sequence[dict]],
                connector: Optional[dict], level_rule: Union[str, int],
                student_input_scale: float) -> Tuple[List[dict], nn.ModuleList, str]:
    """Measure every level of both networks, pair them (:func:`parse_pairs`), build one
    connector per pair (``connector`` is the template, a pair's own ``connector`` overrides it;
    ``None`` compares the maps as they are) and check each pair's channels and strides.

    Returns:
        ``(pairs, connectors, table)``: the pairs (with their measured strides, channels and
        connector type), the connectors in pair order, and the pairing table to log.
    """
    from mmengine.config import ConfigDict

    from mmdet.registry import MODELS
    pairs, student_maps, teacher_maps = measure_and_pair(student, teacher, mimic_levels,
                                                         student_input_scale)
    check_level_rule(level_rule, len(pairs))
    connectors = nn.ModuleList()
    for k, pair in enumerate(pairs):
        (s_ch, s_stride), (t_ch, t_stride) = (student_maps[pair['student']],
                                              teacher_maps[pair['teacher']])
        cfg = pair['connector'] or connector
        where = (f'mimic_levels[{k}] (student level {pair["student"]}, {s_ch} channels -> '
                 f'teacher level {pair["teacher"]}, {t_ch} channels)')
        if cfg is None:  # connector=None: the maps are compared as they are
            if s_ch != t_ch:
                raise ValueError(f'{where}: without a connector the channels must be equal')
            module = nn.Identity()
        else:
            cfg = ConfigDict(cfg)
            cfg.setdefault('in_channels', s_ch)
            cfg.setdefault('out_channels', t_ch)
            try:
                module = MODELS.build(cfg)
                module.check_channels(s_ch, t_ch)
            except (TypeError, ValueError) as err:
                raise type(err)(f'{where}: {err}') from err
        check_pair_strides(f'mimic_levels[{k}]', (s_ch, s_stride), (t_ch, t_stride),
                           (pair['student'], pair['teacher']), student_input_scale,
                           getattr(module, 'scale_factor', 1))
        connectors.append(module)
    table = describe_pairs(pairs, student_maps, teacher_maps,
                           [type(m).__name__ for m in connectors], student_input_scale)
    return pairs, connectors, table


def map_roi_levels(rois: Tensor, num_levels: int, finest_scale: float = FINEST_SCALE) -> Tensor:
    """mmdet's ``SingleRoIExtractor.map_roi_levels``: ``floor(log2(sqrt(w h) / finest_scale
    + 1e-6))`` clamped to ``[0, num_levels - 1]``.

    Args:
        rois: ``(N, 5)`` RoIs in the student's input pixels.
        num_levels: number of pairs (ordered by stride).
        finest_scale: the scale below twice which a RoI goes to level 0.
    """
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    target_lvls = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return target_lvls.clamp(min=0, max=num_levels - 1).long()


def check_level_rule(rule: Union[str, int], num_pairs: int) -> None:
    """``'scale'``, ``'all'`` or a pair index in range (names them)."""
    if isinstance(rule, bool) or not (rule in LEVEL_RULES or isinstance(rule, int)):
        raise ValueError(f'level_rule must be one of {LEVEL_RULES} or a pair index, got '
                         f'{rule!r}')
    if isinstance(rule, int) and not 0 <= rule < num_pairs:
        raise ValueError(f'level_rule={rule} is out of range: there are {num_pairs} '
                         f'mimic pair(s) (valid: 0..{num_pairs - 1}, in stride order)')


def roi_levels(rois: Tensor, rule: Union[str, int], num_levels: int,
               finest_scale: float = FINEST_SCALE) -> Optional[Tensor]:
    """The pair index of each RoI (``(N, )`` long), or ``None`` for ``'all'`` (every pair)."""
    if rule == 'all':
        return None
    if rule == 'scale':
        return map_roi_levels(rois, num_levels, finest_scale)
    return rois.new_full((rois.size(0), ), rule, dtype=torch.long)


def pyramid_loss(loss_fn: Callable[[Tensor, Tensor, Tensor, float], Tensor],
                 preds: Sequence[Tensor], targets: Sequence[Tensor], strides: Sequence[float],
                 rois: Tensor, levels: Optional[Tensor]) -> Tensor:
    """The per-level mimic losses combined over the pairs.

    ``loss_fn`` (Eq. 4) normalises each RoI by its own crop size and the sum by the number of
    RoIs it is given. Pair ``l`` gets the ``N_l`` RoIs of its level and its loss is weighted
    ``N_l / N``, so the total is ``1 / (2N) * sum over (RoI, level) of the per-RoI normalised
    terms``, ``N`` the number of sampled RoIs: with one pair it is the single-level loss itself
    (the same call, bit for bit), and the loss scale does not depend on how the RoIs spread over
    the levels. ``levels=None`` (rule ``'all'``): every RoI on every pair, the sum of the
    pairs' losses. A pair without RoIs adds ``0 * pred.sum()`` (every connector stays in the
    graph, as distributed training needs). One loop over the pairs; none over the RoIs.
    """
    total = None
    num = rois.size(0)
    for lvl, (pred, target, stride) in enumerate(zip(preds, targets, strides)):
        if levels is None:
            term = loss_fn(pred, target, rois, stride)
        else:
            mask = levels == lvl
            count = int(mask.sum())
            if count == num:
                term = loss_fn(pred, target, rois, stride)
            elif count == 0:
                term = pred.sum() * 0
            else:
                term = loss_fn(pred, target, rois[mask], stride) * (count / num)
        total = term if total is None else total + term
    return total


def pairing_table(pairs: Sequence[dict], scale: float,
                  unpaired: Sequence[Tuple[int, float, int]] = ()) -> str:
    """The pairing table printed at start: one row per pair (student level, stride, channels
    -> teacher level, stride, channels, connector), strides in each network's own input pixels;
    the student levels left without a pair are listed below it."""
    rows = [[p['student'], f'{p["student_stride"]:g}', p['student_channels'], '->',
             p['teacher'], f'{p["teacher_stride"]:g}', p['teacher_channels'], p['connector_type']]
            for p in pairs]
    table = markdown_table(rows, ['student level', 'stride', 'channels', '', 'teacher level',
                                  'stride', 'channels', 'connector'])
    text = (f'mimic pairs (student input scale {scale:g}; strides on each network\'s own '
            f'input):\n{table}')
    for level, stride, channels in unpaired:
        text += (f'\nstudent level {level} (stride {stride:g}, {channels} channels) is not '
                 f'mimicked: the teacher has no level of stride {stride / scale:g}')
    return text
