"""Logits mimic (Ba & Caruana), the paper's first Table 4 baseline, on RPN outputs."""
from typing import Sequence, Tuple

from torch import Tensor

from mmdet.registry import MODELS
from .base_mimic_loss import BaseMimicLoss

RPNOutputs = Tuple[Sequence[Tensor], Sequence[Tensor]]


def rpn_logits_l2_loss(student_outs: RPNOutputs, teacher_outs: RPNOutputs) -> Tensor:
    """``1/(2T) * sum_t ||g(x_t; W) - z_t||^2`` over all T anchors of all levels and images.

    ``g`` / ``z`` is an anchor's output vector of the student / teacher RPN: its objectness
    logit(s) and its 4 box deltas, both heads evaluated on the same anchors.

    Args:
        student_outs: ``(cls_scores, bbox_preds)`` of the student RPN head, one tensor per level,
            ``(B, A * cls_out, H, W)`` and ``(B, A * 4, H, W)``.
        teacher_outs: the teacher RPN head's outputs, same shapes.

    Returns:
        scalar loss.
    """
    s_cls, s_reg = student_outs
    t_cls, t_reg = teacher_outs
    total = s_cls[0].sum() * 0
    num_anchors = 0
    for sc, sr, tc, tr in zip(s_cls, s_reg, t_cls, t_reg):
        if sc.shape != tc.shape or sr.shape != tr.shape:
            raise ValueError(
                'logits mimic needs student and teacher RPN outputs on the same anchors, got '
                f'cls {tuple(sc.shape)} vs {tuple(tc.shape)}, '
                f'reg {tuple(sr.shape)} vs {tuple(tr.shape)}')
        total = total + (sc - tc).pow(2).sum() + (sr - tr).pow(2).sum()
        num_anchors += sr.numel() // 4
    if num_anchors == 0:
        return total
    return total / (2 * num_anchors)


@MODELS.register_module()
class RPNLogitsL2Loss(BaseMimicLoss):
    """Logits mimic on the RPN objectness logits and box deltas, see :func:`rpn_logits_l2_loss`.

    Args:
        loss_weight: weight of the loss.
    """

    mimic_input = 'rpn_outputs'

    def forward(self, student_outs: RPNOutputs, teacher_outs: RPNOutputs) -> Tensor:
        """Args: see :func:`rpn_logits_l2_loss`. Returns: weighted scalar loss."""
        return self.loss_weight * rpn_logits_l2_loss(student_outs, teacher_outs)
