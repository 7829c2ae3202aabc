"""The frozen teacher's lifecycle inside a distiller: built from its config, loaded strictly from
its checkpoint, frozen, always in eval mode, and never saved in (or loaded from) the distiller's
checkpoints (docs/advanced_guides/distiller.md)."""
import copy
import os.path as osp
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmmimic.utils.checkpoint import load_state_dict


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: str) -> None:
    """Load a teacher's weights strictly, with errors that say exactly what is wrong.

    Args:
        teacher: the built teacher detector.
        checkpoint: path of an mmengine/mmdet checkpoint (``state_dict`` inside or a raw state
            dict; a ``module.`` prefix from DDP is stripped).

    Raises:
        FileNotFoundError: the file does not exist (message names the path).
        KeyError: the checkpoint's keys do not match the teacher's (lists missing/unexpected).
    """
    if checkpoint is None:
        raise ValueError('the teacher needs a checkpoint (teacher_ckpt); a randomly initialised '
                         'teacher is refused')
    state_dict = load_state_dict(checkpoint, what='teacher checkpoint')
    result = teacher.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(
            f'teacher checkpoint {checkpoint} does not match the teacher model:\n'
            f'  missing keys ({len(result.missing_keys)}): {result.missing_keys}\n'
            f'  unexpected keys ({len(result.unexpected_keys)}): {result.unexpected_keys}')


def config_file(path: str, what: str = 'teacher config') -> str:
    """The file of the config ``path``: a file path, or a package-scoped path such as
    ``'mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py'``, resolved as mmengine resolves a
    ``_base_`` of that form (the installed package's own configs; nothing is installed or
    downloaded).

    Raises:
        FileNotFoundError: no such file, or the package-scoped path names a package that is not
            installed, that mmengine does not know, or no config of it (the message names
            ``what``, the path and the reason).
    """
    if '::' in path:
        try:
            resolved, _ = Config._get_cfg_path(path, '')
        except (FileNotFoundError, ModuleNotFoundError, ValueError, AssertionError) as err:
            raise FileNotFoundError(f'{what} not found: {path} ({err})') from None
        path = resolved
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    return path


def teacher_model_cfg(teacher: Union[str, ConfigType]) -> ConfigDict:
    """The teacher's model config: ``model`` of the config file ``teacher`` (a path, or a
    package-scoped path such as ``'mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py'``,
    :func:`config_file`), or a copy of the model config dict ``teacher``.

    Raises:
        FileNotFoundError: ``teacher`` is a path that does not exist.
    """
    if isinstance(teacher, str):
        return copy.deepcopy(Config.fromfile(config_file(teacher)).model)
    return copy.deepcopy(ConfigDict(teacher))


def drop_teacher_state(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata: dict) -> dict:
    """State-dict hook: checkpoints hold the student (and connector), never the teacher."""
    teacher_prefix = prefix + 'teacher.'
    for key in [k for k in state_dict if k.startswith(teacher_prefix)]:
        del state_dict[key]
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in [k for k in metadata if k == teacher_prefix[:-1] or
                    k.startswith(teacher_prefix)]:
            del metadata[key]
    return state_dict


class FrozenTeacherMixin:
    """The teacher of a distiller (an ``nn.Module``): :meth:`build_teacher` makes
    ``self.teacher`` (and ``self.teacher_ckpt``, ``self.teacher_model_cfg``); the mixin keeps it
    in eval mode whatever :meth:`train` is asked, leaves it out of ``state_dict()`` and refills
    it from its own checkpoint when a state dict is loaded. The checkpoint keys of the teacher
    stay ``teacher.*`` (the detector is the attribute itself, no wrapper)."""

    def build_teacher(self, teacher_cfg: ConfigDict, teacher_ckpt: Optional[str]) -> None:
        """The one place the teacher is built: loaded strictly from ``teacher_ckpt``, frozen, in
        eval mode, marked initialised (``init_weights()`` keeps the checkpoint's weights) and
        left out of this model's checkpoints.

        Args:
            teacher_cfg: the teacher's model config (:func:`teacher_model_cfg`).
            teacher_ckpt: the teacher's checkpoint (:func:`load_teacher_checkpoint`).
        """
        #: the teacher's model config as given (building changes its own copy)
        self.teacher_model_cfg = copy.deepcopy(teacher_cfg)
        self.teacher = MODELS.build(teacher_cfg)
        load_teacher_checkpoint(self.teacher, teacher_ckpt)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher._is_init = True
        self.teacher_ckpt = teacher_ckpt
        self._register_state_dict_hook(drop_teacher_state)

    def train(self, mode: bool = True) -> nn.Module:
        """Set the student (and connector) to ``mode``; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        """Checkpoints carry no teacher: the teacher always comes from ``teacher_ckpt``, so its
        entries are (re)filled from the loaded teacher before the children read the dict."""
        teacher_prefix = prefix + 'teacher.'
        for key in [k for k in state_dict if k.startswith(teacher_prefix)]:
            state_dict.pop(key)
        for key, value in self.teacher.state_dict().items():
            state_dict[teacher_prefix + key] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def extract_teacher_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Teacher features, frozen and without autograd.

        Args:
            batch_inputs: ``(B, 3, H, W)`` full-size images.

        Returns:
            the teacher's multi-level features.
        """
        return self.teacher.extract_feat(batch_inputs)

    @torch.no_grad()
    def teacher_roi_forward(self, teacher_feats: Tuple[Tensor], rois: Tensor) -> dict:
        """The teacher RoI head's box branch on given RoIs (frozen, no autograd).

        Args:
            teacher_feats: teacher features.
            rois: ``(N, 5)`` RoIs in the teacher's input pixels.

        Returns:
            dict with ``cls_score`` ``(N, C + 1)`` and ``bbox_pred`` ``(N, 4)`` or ``(N, 4C)``.
        """
        return self.teacher.roi_head._bbox_forward(teacher_feats, rois)
