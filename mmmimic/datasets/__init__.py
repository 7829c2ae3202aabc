"""Caltech data: the numpy-only I/O and converter (imported here, no torch), and the mmdet dataset
and transform classes (imported on first use of their names or by registration)."""
import importlib
from typing import Any

from . import caltech_converter, caltech_io
from .caltech_io import FRAME_PRESETS, parse_img_id

_LAZY = {'CaltechPedestrianDataset': 'caltech', 'StrideAlignedRandomCrop': 'transforms'}

__all__ = ['caltech_converter', 'caltech_io', 'FRAME_PRESETS', 'parse_img_id', *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
