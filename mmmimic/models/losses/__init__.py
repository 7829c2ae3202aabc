from .base_mimic_loss import MIMIC_INPUTS, BaseMimicLoss
from .feature_mimic_loss import (PooledFeatureL2Loss, ProposalSampledL2Loss, WholeFeatureL2Loss,
                                 pooled_feature_l2_loss, proposal_sampled_l2_loss,
                                 roi_cell_ranges, roi_weight_map, whole_feature_l2_loss)
from .logits_mimic_loss import RPNLogitsL2Loss, rpn_logits_l2_loss
from .roi_logits_mimic_loss import RoILogitsL2Loss, roi_logits_l2_loss

__all__ = [
    'BaseMimicLoss', 'MIMIC_INPUTS', 'ProposalSampledL2Loss', 'PooledFeatureL2Loss',
    'WholeFeatureL2Loss', 'RPNLogitsL2Loss', 'RoILogitsL2Loss', 'roi_logits_l2_loss',
    'proposal_sampled_l2_loss', 'pooled_feature_l2_loss', 'whole_feature_l2_loss',
    'rpn_logits_l2_loss', 'roi_cell_ranges', 'roi_weight_map'
]
