from .caltech_metric import CaltechMRMetric
from .proposal_recall_metric import ProposalRecallMetric

__all__ = ['CaltechMRMetric', 'ProposalRecallMetric']
