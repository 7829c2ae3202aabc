"""mmmimic: feature-mimic distillation of small, fast detectors for MMDetection 3.x.

Importing the package registers every mmmimic module into mmdet's registries (default scope
``mmdet``), so configs may use ``custom_imports=dict(imports=['mmmimic'])``.

With the environment variable ``MMMIMIC_LIGHT_IMPORT=1`` the package registers nothing and imports
neither torch nor mmdet: only the numpy-only functional core (Caltech I/O and evaluation) is used,
as by ``tools/analysis_tools/caltech_eval.py``. :func:`register_all_modules` registers later.
"""
import os

from .version import __version__

#: True when ``MMMIMIC_LIGHT_IMPORT`` asks for the torch-free functional core only.
LIGHT_IMPORT = os.environ.get('MMMIMIC_LIGHT_IMPORT', '') not in ('', '0')


def register_all_modules() -> None:
    """Install the compatibility patches and register every module (idempotent)."""
    from . import compat
    compat.install()
    from . import datasets, engine, evaluation, models  # noqa: F401
    # after a light import, datasets/evaluation were loaded without their mmdet classes
    from .datasets import caltech  # noqa: F401
    from .evaluation import metrics  # noqa: F401
    from .datasets import transforms  # noqa: F401


if not LIGHT_IMPORT:
    register_all_modules()

__all__ = ['__version__', 'LIGHT_IMPORT', 'register_all_modules']
