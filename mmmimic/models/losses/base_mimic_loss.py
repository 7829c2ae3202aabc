"""The contract every mimic loss follows, so the distiller knows what to feed it at build time.

A mimic loss declares what it compares (:attr:`BaseMimicLoss.mimic_input`) and carries a
``loss_weight``; its ``forward`` takes the arguments documented for that input kind:

=====================  ============================================  ===========================
``mimic_input``        ``forward`` arguments                         distiller slot
=====================  ============================================  ===========================
``'rois'``             ``(pred, target, rois, stride)``: student     ``mimic_loss`` (Eq. 3/4)
                       map after the connector and teacher map
                       ``(B, C, H, W)``, ``(N, 5)`` sampled RoIs in
                       the teacher's input pixels, the maps' stride
``'images'``           ``(pred, target, image_rois, stride)``: as    ``mimic_loss`` (whole map)
                       above with one RoI per image (its valid
                       region)
``'rpn_outputs'``      ``(student_outs, teacher_outs)``: each        ``mimic_loss`` (logits)
                       ``(cls_scores, bbox_preds)`` of an RPN head
``'roi_head_outputs'`` ``(pred, target)``: ``(N, K)`` RoI-head       ``roi_mimic_cls_loss`` /
                       outputs of student and teacher on the same    ``roi_mimic_bbox_loss``
                       RoIs                                          (two-stage mimic)
=====================  ============================================  ===========================

Every ``forward`` returns the weighted scalar loss.
"""
import math
from abc import ABCMeta, abstractmethod
from numbers import Real
from typing import Sequence

import torch.nn as nn
from torch import Tensor

#: The input kinds a mimic loss may declare (see the module docstring).
MIMIC_INPUTS = ('rois', 'images', 'rpn_outputs', 'roi_head_outputs')


class BaseMimicLoss(nn.Module, metaclass=ABCMeta):
    """Base class of mimic losses: a declared ``mimic_input`` and a checked ``loss_weight``.

    Subclasses set the class attribute ``mimic_input`` to one of :data:`MIMIC_INPUTS` (checked
    when the subclass is defined) and implement ``forward`` with the arguments of that kind.

    Args:
        loss_weight: weight multiplied into the loss; a finite real number ``>= 0``.

    Raises:
        ValueError: ``loss_weight`` is negative, NaN, infinite or not a number.
    """

    mimic_input: str = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.mimic_input not in MIMIC_INPUTS:
            raise TypeError(f'{cls.__name__}.mimic_input must be one of {list(MIMIC_INPUTS)}, '
                            f'got {cls.mimic_input!r}')

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, Real) or \
                not math.isfinite(loss_weight) or loss_weight < 0:
            raise ValueError(f'{type(self).__name__}: loss_weight must be a finite number >= 0, '
                             f'got {loss_weight!r}')
        self.loss_weight = loss_weight

    @abstractmethod
    def forward(self, *args) -> Tensor:
        """The weighted scalar loss; the arguments depend on :attr:`mimic_input`."""

    def check_mimic_input(self, slot: str, accepted: Sequence[str]) -> None:
        """Raise ``TypeError`` naming the slot and the loss unless its input kind is accepted.

        Args:
            slot: the distiller argument the loss was given as (e.g. ``'mimic_loss'``).
            accepted: the ``mimic_input`` kinds that slot feeds.
        """
        if self.mimic_input not in accepted:
            raise TypeError(f'{slot}: {type(self).__name__} compares {self.mimic_input!r}, but '
                            f'{slot} takes a loss of mimic_input {list(accepted)}')
