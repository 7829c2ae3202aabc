"""Stage 2 (paper Sec. 3.3): initialise a detector's backbone and RPN from a stage-1 mimic run.

``MimicStudentInit`` is an mmengine weight initialiser, used as a module's ``init_cfg``::

    backbone=dict(init_cfg=dict(type='MimicStudentInit', checkpoint=CKPT, prefix='backbone.'))
    rpn_head=dict(init_cfg=dict(type='MimicStudentInit', checkpoint=CKPT, prefix='bbox_head.'))

``CKPT`` is either ``tools/model_converters/extract_student.py``'s ``student.pth`` or the
distiller's own checkpoint (its ``student.`` entries are used, ``connector.`` ones ignored). Unlike
mmengine's ``Pretrained`` (which loads non-strictly and only logs what it missed), every parameter
and buffer of the module must come from the checkpoint and every checkpoint entry under the prefix
must fit, otherwise the error lists the keys: a silently random "pretrained" RPN is the failure
this guards against. Modules without such an ``init_cfg`` keep their random initialisation.
"""
from typing import Dict

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from torch import Tensor

from mmdet.registry import WEIGHT_INITIALIZERS
from mmmimic.utils.checkpoint import STUDENT_PREFIX, load_state_dict


def load_student_state_dict(checkpoint: str, map_location: str = 'cpu') -> Dict[str, Tensor]:
    """The student's state dict from a stage-1 checkpoint.

    Args:
        checkpoint: ``extract_student.py`` output (plain detector keys) or a
            ``FeatureMimicDistiller`` checkpoint (``student.*``, ``connector.*`` keys).
        map_location: where to load tensors.

    Returns:
        plain student keys (``backbone.*``, ``bbox_head.*`` / ``rpn_head.*``, ...).

    Raises:
        FileNotFoundError: the file does not exist (message names the path).
    """
    return load_state_dict(
        checkpoint, what='stage-1 checkpoint', prefix=STUDENT_PREFIX, map_location=map_location)


@WEIGHT_INITIALIZERS.register_module(name='MimicStudentInit')
class MimicStudentInit(PretrainedInit):
    """Load one module of a stage-1 student strictly (see the module docstring).

    Args:
        checkpoint: the stage-1 checkpoint (student-only export or distiller checkpoint).
        prefix: the module's key prefix in the student, e.g. ``'backbone.'``, or
            ``'bbox_head.'`` for the head of an mmdet ``RPN`` detector (``'rpn_head.'`` when the
            stage-1 student was a two-stage detector).
        map_location: where to load tensors.
    """

    def __init__(self, checkpoint: str, prefix: str, map_location: str = 'cpu') -> None:
        if not prefix or not prefix.endswith('.'):
            raise ValueError(f'MimicStudentInit needs a key prefix ending in ".", got {prefix!r}')
        super().__init__(checkpoint=checkpoint, prefix=prefix, map_location=map_location)

    def __call__(self, module: nn.Module) -> None:
        """Copy ``prefix*`` entries of the student into ``module``, strictly.

        Raises:
            KeyError: no entry has the prefix (lists the prefixes there are), or the module and
                the entries disagree (lists missing and unexpected keys).
            RuntimeError: an entry's shape differs from the module's (torch names it).
        """
        state_dict = load_student_state_dict(self.checkpoint, self.map_location)
        sub = {k[len(self.prefix):]: v for k, v in state_dict.items()
               if k.startswith(self.prefix)}
        if not sub:
            heads = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
            raise KeyError(f'no "{self.prefix}" entries in stage-1 checkpoint {self.checkpoint}; '
                           f'its student has: {heads}')
        result = module.load_state_dict(sub, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise KeyError(
                f'stage-1 checkpoint {self.checkpoint} ("{self.prefix}" entries) does not match '
                f'{type(module).__name__}:\n'
                f'  missing keys ({len(result.missing_keys)}): {result.missing_keys}\n'
                f'  unexpected keys ({len(result.unexpected_keys)}): {result.unexpected_keys}')
        # mmengine runs a module's non-"Pretrained" init_cfg *before* its children's own
        # init_weights() (e.g. ConvModule's Kaiming init), which would overwrite what was just
        # loaded: mark every submodule initialised so that those calls are skipped.
        for submodule in module.modules():
            if submodule is not module:
                if hasattr(submodule, '_is_init'):
                    submodule._is_init = True
                else:
                    submodule.is_init = True
        print_log(f'{type(module).__name__}: {len(sub)} entries loaded from "{self.prefix}" of '
                  f'{self.checkpoint}', logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: "{self.prefix}" of {self.checkpoint}'
