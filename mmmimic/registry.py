# Copyright (c) mmmimic contributors. All rights reserved.
"""Lazy registration of mmmimic's modules into mmdet's registries, as mmdet registers its own.

mmdet's registries are built with import ``locations`` (``Registry('model', ...,
locations=['mmdet.models'])``): the first time a registry looks a name up, mmengine imports those
modules, and only then do their classes register. mmmimic adds :data:`REGISTER_MODULE` to the
locations of the registries it registers into, so ``import mmmimic`` (or a config's
``custom_imports=dict(imports=['mmmimic'])``) registers nothing by itself and imports neither torch
nor mmdet; the first lookup (``MODELS.build(cfg)``, ``Runner.from_cfg(cfg)``) imports
:data:`REGISTER_MODULE`, which installs :mod:`mmmimic.compat` and registers every module.

* When ``mmdet.registry`` is not imported yet, a one-shot import hook adds the locations right
  after it is (nothing else runs inside that import).
* When it is imported already, the locations are added now; a registry that has already done its
  lazy import gets mmmimic's modules imported at once.

:func:`register_all_modules` registers everything eagerly (tools call it first).
"""
import importlib
import importlib.abc
import sys
import types
from typing import Optional

#: the mmdet registry module whose registries mmmimic registers into
MMDET_REGISTRY = 'mmdet.registry'
#: the module that installs :mod:`mmmimic.compat` and imports every registering module
REGISTER_MODULE = 'mmmimic.register'
#: the registries of :data:`MMDET_REGISTRY` that mmmimic's modules register into
REGISTRIES = ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'TASK_UTILS',
              'WEIGHT_INITIALIZERS')


def register_all_modules() -> None:
    """Install :mod:`mmmimic.compat` and register every mmmimic module now (idempotent)."""
    importlib.import_module(REGISTER_MODULE)


def _add_locations(registry_module: types.ModuleType) -> None:
    """Add :data:`REGISTER_MODULE` to the import locations of mmdet's registries."""
    import_now = False
    for name in REGISTRIES:
        registry = getattr(registry_module, name)
        if REGISTER_MODULE not in registry._locations:
            registry._locations.append(REGISTER_MODULE)
        # a registry that already ran its lazy import will not run it again
        import_now = import_now or registry._imported
    if import_now:
        register_all_modules()


class _AfterImportLoader(importlib.abc.Loader):
    """Runs the real loader of ``mmdet.registry``, then adds mmmimic's locations."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        _add_locations(module)


class _MMDetRegistryFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that answers for exactly one name, ``mmdet.registry``, once."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != MMDET_REGISTRY:
            return None
        _remove_hook()
        for finder in sys.meta_path:
            find_spec = getattr(finder, 'find_spec', None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader = _AfterImportLoader(spec.loader)
                return spec
        return None


_HOOK: Optional[_MMDetRegistryFinder] = None


def _remove_hook() -> None:
    global _HOOK
    if _HOOK is not None and _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
    _HOOK = None


def install_lazy_registration() -> None:
    """Make mmdet's registries import mmmimic's modules on their first lookup (idempotent)."""
    global _HOOK
    module = sys.modules.get(MMDET_REGISTRY)
    if module is not None:
        _add_locations(module)
    elif _HOOK is None:
        _HOOK = _MMDetRegistryFinder()
        sys.meta_path.insert(0, _HOOK)
