"""Import ``mmpretrain.models`` where torchvision is not installed.

Why this exists: mmpretrain 1.2.0 imports ``torchvision.ops.boxes`` at module level in exactly two
files that have nothing to do with the backbones mmmimic uses (``mmpretrain/models/utils/
box_utils.py`` and ``mmpretrain/evaluation/metrics/visual_grounding_eval.py``, reached through
``mmpretrain.models.heads.cls_head``). Without torchvision, ``import mmpretrain.models`` therefore
fails, and so does every config that names ``type='mmpretrain.VGG'`` (mmengine's registry imports
``mmpretrain.models`` the first time it looks a name up in mmpretrain's ``MODELS``). A CPU torch
build (or a torch without a matching torchvision wheel) is a supported setup for mmmimic.

What it does, and nothing more:

* :func:`install_import_hook` (called by :func:`mmmimic.compat.install`) puts on
  ``sys.meta_path`` a finder that answers for exactly one module name, ``mmpretrain.models``, and
  only while torchvision is not importable. Its loader is mmpretrain's real loader, run while
  three stub modules (``torchvision``, ``torchvision.ops``, ``torchvision.ops.boxes``, the last
  with pure-torch ``box_area``/``box_iou``/``generalized_box_iou``/``_upcast``, the only names
  those two files use) sit in ``sys.modules``; they are **removed again** afterwards, so
  ``import torchvision`` elsewhere still raises ``ImportError`` and no other library mistakes the
  stub for the real package.
* Nothing is imported eagerly: the lazy import mmengine's registry performs the first time a
  config names ``mmpretrain.XXX`` goes through the finder, and a config that never names an
  mmpretrain model pays nothing. :func:`import_mmpretrain_models` imports it explicitly.

Nothing in site-packages is modified. With torchvision installed the hook is not installed and
everything is plain mmengine/mmpretrain.
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor

MMPRETRAIN_MODELS = 'mmpretrain.models'
_STUB_NAMES = ('torchvision', 'torchvision.ops', 'torchvision.ops.boxes')


def torchvision_available() -> bool:
    """Whether a real torchvision can be imported (a stub never counts)."""
    module = sys.modules.get('torchvision')
    if module is not None:
        return not getattr(module, '__mmmimic_stub__', False)
    try:
        return importlib.util.find_spec('torchvision') is not None
    except (ImportError, ValueError):
        return False


def _upcast(t: Tensor) -> Tensor:
    # Same rule as torchvision: avoid integer overflow, keep floating types.
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def box_area(boxes: Tensor) -> Tensor:
    """Area of (x1, y1, x2, y2) boxes, as ``torchvision.ops.box_area``."""
    boxes = _upcast(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _box_inter_union(boxes1: Tensor, boxes2: Tensor):
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = _upcast(rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[:, None] + area2 - inter


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU (N, M), as ``torchvision.ops.box_iou``."""
    inter, union = _box_inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalised IoU (N, M), as ``torchvision.ops.generalized_box_iou``."""
    inter, union = _box_inter_union(boxes1, boxes2)
    iou = inter / union
    lti = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rbi = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    whi = _upcast(rbi - lti).clamp(min=0)
    areai = whi[..., 0] * whi[..., 1]
    return iou - (areai - union) / areai


def _make_stub_modules() -> dict:
    boxes = types.ModuleType('torchvision.ops.boxes')
    boxes.__doc__ = 'mmmimic stub: pure-torch box ops used by mmpretrain at import time.'
    for fn in (box_area, box_iou, generalized_box_iou, _upcast):
        setattr(boxes, fn.__name__, fn)
    ops = types.ModuleType('torchvision.ops')
    ops.boxes = boxes
    for fn in (box_area, box_iou, generalized_box_iou):
        setattr(ops, fn.__name__, fn)
    root = types.ModuleType('torchvision')
    root.ops = ops
    for module in (boxes, ops, root):
        module.__mmmimic_stub__ = True
    return {'torchvision': root, 'torchvision.ops': ops, 'torchvision.ops.boxes': boxes}


@contextmanager
def _temporary_torchvision_stub() -> Iterator[None]:
    stubs = _make_stub_modules()
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name in _STUB_NAMES:
            if sys.modules.get(name) is stubs[name]:
                del sys.modules[name]


class _StubbedTorchvisionLoader(importlib.abc.Loader):
    """Runs the real loader of ``mmpretrain.models`` with the torchvision stub in place."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _temporary_torchvision_stub():
            self.loader.exec_module(module)


class _MMPretrainModelsFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that answers for exactly one name, ``mmpretrain.models``."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != MMPRETRAIN_MODELS or torchvision_available():
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _StubbedTorchvisionLoader(spec.loader)
        return spec


def install_import_hook() -> bool:
    """Let ``import mmpretrain.models`` succeed without torchvision (no-op when it is installed).

    Puts a finder that answers only for ``mmpretrain.models`` first on ``sys.meta_path``; its
    loader is the real one, run with the temporary stub of ``torchvision.ops.boxes``. mmengine's
    registry (``type='mmpretrain.VGG'`` from mmdet's ``MODELS``), ``custom_imports`` and a plain
    ``import mmpretrain.models`` all go through it. Idempotent.

    Returns:
        bool: True if the hook is installed (torchvision missing), False otherwise.
    """
    if torchvision_available():
        return False
    if not any(isinstance(f, _MMPretrainModelsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MMPretrainModelsFinder())
    return True


def import_mmpretrain_models() -> types.ModuleType:
    """Import and return ``mmpretrain.models`` (through the hook if torchvision is missing).

    Returns:
        module: ``mmpretrain.models``; its modules are then registered in mmpretrain's
        ``MODELS``, so ``type='mmpretrain.VGG'`` resolves from mmdet's registry.
    """
    install_import_hook()
    return importlib.import_module(MMPRETRAIN_MODELS)
