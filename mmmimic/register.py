# Copyright (c) mmmimic contributors. All rights reserved.
"""Importing this module installs :mod:`mmmimic.compat` and registers every mmmimic module into
mmdet's registries. mmengine imports it lazily, as an import location of those registries
(:mod:`mmmimic.registry`); :func:`mmmimic.registry.register_all_modules` imports it eagerly."""
from . import compat

compat.install()

from .datasets import caltech, transforms  # noqa: F401,E402
from .engine import hooks  # noqa: F401,E402
from .evaluation import metrics  # noqa: F401,E402
from . import models  # noqa: F401,E402
