"""The shape of the teacher's cached map(s) for an input shape, measured on the network itself."""
from typing import Dict, Tuple, Union

import torch
from torch import nn

from .levels import Levels, level_name


class TeacherMapGeometry:
    """``(C, h, w)`` of a teacher's map ``feature`` (or of every cached pyramid level) for a
    batch shape, measured once per shape with one forward on zeros (the network's own padding
    arithmetic, e.g. 62x83 cells for an unpadded 1000x1333 input at stride 16) and remembered;
    an entry's shape is that of its image padded to the data preprocessor's
    ``pad_size_divisor``, as the live step pads it.

    Args:
        teacher: the frozen teacher detector (``extract_feat``).
        feature: the mimicked map's index in ``extract_feat(...)`` (a single-map store).
        pad_size_divisor: the data preprocessor's ``pad_size_divisor``.
        levels: pyramid mimic: ``[(teacher level index, stride), ...]`` of the cached levels
            (:func:`~.levels.cached_levels`); ``feature`` is then not used.
    """

    def __init__(self, teacher: nn.Module, feature: int, pad_size_divisor: int = 1,
                 levels: Levels = None) -> None:
        self.teacher = teacher
        self.feature = feature
        self.divisor = int(pad_size_divisor or 1)
        self.levels = levels
        #: ``batch shape -> {index: (C, h, w)}`` of the cached maps, measured so far
        self.measured: Dict[Tuple[int, int], Dict[int, Tuple[int, int, int]]] = {}

    def _measure(self, batch_shape: Tuple[int, int]) -> Dict[int, Tuple[int, int, int]]:
        batch_shape = tuple(int(d) for d in batch_shape)
        if batch_shape not in self.measured:
            param = next(self.teacher.parameters())
            with torch.no_grad():
                feats = self.teacher.extract_feat(param.new_zeros(1, 3, *batch_shape))
            indices = [self.feature] if self.levels is None else [j for j, _ in self.levels]
            self.measured[batch_shape] = {j: tuple(int(d) for d in feats[j].shape[1:])
                                          for j in indices}
        return self.measured[batch_shape]

    @property
    def sizes(self) -> Dict[Tuple[int, int], Tuple[int, int]]:
        """``batch shape -> (h, w)`` of the single map measured so far."""
        return {shape: maps[self.feature][1:] for shape, maps in self.measured.items()}

    def map_geometry(self, batch_shape: Tuple[int, int]) -> Tuple[int, int, int]:
        """``(C, h, w)`` of the teacher's (single) map for a ``batch_shape`` input."""
        return self._measure(batch_shape)[self.feature]

    def map_shape(self, batch_shape: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` of the teacher's (single) map for a ``batch_shape`` input."""
        return self.map_geometry(batch_shape)[1:]

    def level_shapes(self, batch_shape: Tuple[int, int]) -> Dict[str, Tuple[int, int]]:
        """``{tensor name: (h, w)}`` of the cached pyramid levels for a ``batch_shape`` input."""
        return {level_name(j): shape[1:] for j, shape in self._measure(batch_shape).items()}

    def _padded(self, h: int, w: int) -> Tuple[int, int]:
        d = self.divisor
        return -(-h // d) * d, -(-w // d) * d

    def entry_shape(self, h: int, w: int
                    ) -> Union[Tuple[int, int, int], Dict[str, Tuple[int, int, int]]]:
        """The shape of the entry of an ``h x w`` image: ``(C, map_h, map_w)``, or ``{tensor
        name: (C, map_h, map_w)}`` of a pyramid store."""
        maps = self._measure(self._padded(h, w))
        if self.levels is None:
            return maps[self.feature]
        return {level_name(j): shape for j, shape in maps.items()}
