"""mmmimic: feature-mimic distillation of small, fast detectors for MMDetection 3.x.

``import mmmimic`` (or a config's ``custom_imports=dict(imports=['mmmimic'])``) imports neither
torch nor mmdet: it makes mmdet's registries import mmmimic's modules on their first lookup, as
mmdet registers its own (:mod:`mmmimic.registry`). The numpy-only functional core
(:mod:`mmmimic.evaluation.functional`, :mod:`mmmimic.datasets.caltech_io`) therefore imports no
torch. :func:`register_all_modules` registers everything at once.
"""
from .registry import install_lazy_registration, register_all_modules
from .version import __version__

install_lazy_registration()

__all__ = ['__version__', 'register_all_modules']
