"""Two-stage mimic (paper Sec. 3.4): L2 regression of the student's second-stage outputs to the
teacher's on the same RoIs."""
from torch import Tensor

from mmdet.registry import MODELS
from .base_mimic_loss import BaseMimicLoss


def roi_logits_l2_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1/(2N) * sum_i ||pred_i - target_i||^2`` over the N RoIs (rows).

    Args:
        pred: ``(N, K)`` student outputs of the RoI head on N RoIs (classification logits or
            box deltas).
        target: ``(N, K)`` teacher outputs on the same RoIs (no gradient flows into it).

    Returns:
        scalar loss; ``pred.sum() * 0`` when there are no RoIs (keeps the graph, no NaN).

    Raises:
        ValueError: the shapes differ (e.g. a class-agnostic teacher regressing one box per RoI
            against a class-specific student), naming both.
    """
    if pred.shape != target.shape:
        raise ValueError(f'second-stage mimic needs equal student and teacher output shapes, got '
                         f'{tuple(pred.shape)} (student) vs {tuple(target.shape)} (teacher)')
    if pred.numel() == 0:
        return pred.sum() * 0
    return (pred - target.detach()).pow(2).sum() / (2 * pred.size(0))


@MODELS.register_module()
class RoILogitsL2Loss(BaseMimicLoss):
    """L2 regression of RoI-head outputs to the teacher's, see :func:`roi_logits_l2_loss`.

    Used twice by two-stage mimic: once for the classification logits (``loss_mimic_cls``) and
    once for the box deltas (``loss_mimic_bbox``), each with its own ``loss_weight``.

    Args:
        loss_weight: weight of the loss.
    """

    mimic_input = 'roi_head_outputs'

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: see :func:`roi_logits_l2_loss`. Returns: weighted scalar loss."""
        return self.loss_weight * roi_logits_l2_loss(pred, target)
