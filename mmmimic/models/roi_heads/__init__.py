from .ps_roi_pool import PSRoIPool, ps_roi_pool
from .rfcn_bbox_head import RFCNBBoxHead
from .rfcn_roi_head import RFCNRoIHead

__all__ = ['PSRoIPool', 'ps_roi_pool', 'RFCNBBoxHead', 'RFCNRoIHead']
