from .fast_exact_rpn_head import FastExactRPNHead, use_fast_exact_rpn
from .proposals import candidate_ladder, fast_path_applies, rpn_proposals

__all__ = ['FastExactRPNHead', 'use_fast_exact_rpn', 'candidate_ladder', 'fast_path_applies',
           'rpn_proposals']
