"""Which teacher maps a store holds, and what each entry's tensors are called.

A store holds either the single mimicked map of a one-pair distiller (``teacher_feature``; each
entry one tensor ``'map'``, as always) or, for pyramid mimic (``mimic_levels``), every teacher
level that a pair mimics: the set of ``pair['teacher']`` indices with their strides, each entry
one tensor ``'level{j}'`` per level ``j`` (docs/advanced_guides/distiller.md, "Teacher-feature
cache"). The level set is part of the store's identity (``teacher_levels``, e.g.
``'0@4,1@8,2@16'``: index@stride), so a store filled for other levels is refused when opened.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .identity import CacheError, levels_record  # noqa: F401

#: the one tensor of a single-map entry
SINGLE = 'map'
#: ``[(teacher level index, stride in the teacher's pixels), ...]`` in index order, or ``None``
#: for the single map of ``teacher_feature``
Levels = Optional[List[Tuple[int, int]]]
LEVEL_RECORD = re.compile(r'^(0|[1-9][0-9]{0,2})@([1-9][0-9]{0,4})$')
MAX_LEVELS = 16


def level_name(index: int) -> str:
    """The tensor name of teacher level ``index`` in an entry."""
    return f'level{int(index)}'


def cached_levels(mimic_pairs: Optional[Sequence[dict]]) -> Levels:
    """The teacher levels a distiller's pairs mimic (``None``: no pyramid, the single map).

    Raises:
        ValueError: a teacher level whose measured stride is not a whole number of pixels, or
            one level listed with two strides (names the levels and strides).
    """
    if mimic_pairs is None:
        return None
    levels: Dict[int, int] = {}
    for pair in mimic_pairs:
        index, stride = int(pair['teacher']), float(pair['teacher_stride'])
        if stride != int(stride) or stride < 1 or levels.get(index, int(stride)) != int(stride):
            raise ValueError(f'teacher_cache: teacher level {index} has stride {stride:g}; the '
                             'cache keys its maps by whole-pixel strides')
        levels[index] = int(stride)
    return sorted(levels.items())


def entry_tensors(levels: Levels) -> Tuple[str, ...]:
    """The tensor names of an entry: ``('map',)`` or ``('level{j}', ...)`` in level order."""
    return (SINGLE, ) if levels is None else tuple(level_name(j) for j, _ in levels)


def level_strides(levels: Levels, stride: int) -> Dict[str, int]:
    """``{tensor name: stride}``; ``stride`` is the single map's."""
    if levels is None:
        return {SINGLE: int(stride)}
    return {level_name(j): s for j, s in levels}


def coarsest_stride(levels: Levels, stride: int) -> int:
    """The stride a crop offset must be a multiple of (``StrideAlignedRandomCrop.stride``): the
    coarsest cached level's, which every other cached stride must divide.

    Raises:
        ValueError: a cached stride that does not divide the coarsest (names all of them).
    """
    strides = list(level_strides(levels, stride).values())
    top = max(strides)
    if any(top % s for s in strides):
        raise ValueError(f'teacher_cache: the cached teacher strides {strides} do not all divide '
                         f'the coarsest ({top}); a crop offset cannot be whole cells on every '
                         'level')
    return top


def parse_levels_record(record: str) -> List[Tuple[int, int]]:
    """The inverse of :func:`levels_record`.

    Raises:
        CacheError: not a record of at most ``MAX_LEVELS`` distinct ``index@stride`` in index
            order.
    """
    parts = record.split(',') if isinstance(record, str) and record else []
    matches = [LEVEL_RECORD.match(p) for p in parts[:MAX_LEVELS + 1]]
    levels = [(int(m.group(1)), int(m.group(2))) for m in matches if m]
    if not levels or len(levels) != len(parts) or len(levels) > MAX_LEVELS or \
            [j for j, _ in levels] != sorted({j for j, _ in levels}):
        raise CacheError(f'teacher cache: teacher_levels {str(record)[:80]!r} is not a list of '
                         'index@stride in index order')
    return levels
