"""mmmimic: feature-mimic distillation of small, fast detectors for MMDetection 3.x.

Importing the package registers every mmmimic module into mmdet's registries (default scope
``mmdet``), so configs may use ``custom_imports=dict(imports=['mmmimic'])``.
"""
from .utils.env import check_mmcv_ops
from .version import __version__

check_mmcv_ops()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
