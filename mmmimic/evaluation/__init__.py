"""Caltech evaluation: the numpy-only functional core (:mod:`.functional`, imported here) and the
mmengine metrics (:mod:`.metrics`, imported on first use of their names or by registration)."""
import importlib
from typing import Any

from .functional import *  # noqa: F401,F403

_METRICS = ('CaltechMRMetric', 'ProposalRecallMetric')


def __getattr__(name: str) -> Any:
    if name in _METRICS:
        return getattr(importlib.import_module(f'{__name__}.metrics'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
