"""The shape of the teacher's mimicked map for an input shape, measured on the network itself."""
from typing import Dict, Tuple

import torch
from torch import nn


class TeacherMapGeometry:
    """``(C, h, w)`` of a teacher's map ``feature`` for a batch shape, measured once per shape
    with one forward on zeros (the network's own padding arithmetic, e.g. 62x83 cells for an
    unpadded 1000x1333 input at stride 16) and remembered; an entry's shape is that of its image
    padded to the data preprocessor's ``pad_size_divisor``, as the live step pads it.

    Args:
        teacher: the frozen teacher detector (``extract_feat``).
        feature: the mimicked map's index in ``extract_feat(...)``.
        pad_size_divisor: the data preprocessor's ``pad_size_divisor``.
    """

    def __init__(self, teacher: nn.Module, feature: int, pad_size_divisor: int = 1) -> None:
        self.teacher = teacher
        self.feature = feature
        self.divisor = int(pad_size_divisor or 1)
        #: ``batch shape -> (h, w)`` and ``batch shape -> C`` measured so far
        self.sizes: Dict[Tuple[int, int], Tuple[int, int]] = {}
        self.channels: Dict[Tuple[int, int], int] = {}

    def map_geometry(self, batch_shape: Tuple[int, int]) -> Tuple[int, int, int]:
        """``(C, h, w)`` of the teacher's map for a ``batch_shape`` input."""
        batch_shape = tuple(int(d) for d in batch_shape)
        if batch_shape not in self.sizes:
            param = next(self.teacher.parameters())
            with torch.no_grad():
                feat = self.teacher.extract_feat(param.new_zeros(1, 3, *batch_shape))
            feat = feat[self.feature]
            self.sizes[batch_shape] = tuple(feat.shape[-2:])
            self.channels[batch_shape] = int(feat.shape[1])
        return (self.channels[batch_shape], ) + self.sizes[batch_shape]

    def map_shape(self, batch_shape: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` of the teacher's map for a ``batch_shape`` input."""
        return self.map_geometry(batch_shape)[1:]

    def entry_shape(self, h: int, w: int) -> Tuple[int, int, int]:
        """``(C, map_h, map_w)``: the shape of the entry of an ``h x w`` image."""
        d = self.divisor
        return self.map_geometry((-(-h // d) * d, -(-w // d) * d))
