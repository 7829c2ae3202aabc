"""Hooks of the vtest study."""
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class LaterBestCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``save_best`` keeps the LATER of equally good checkpoints
    (``rule='less'``: a new value ``<=`` the best so far replaces it; mmengine's keeps the
    earlier).

    Why: the mmdet block's teacher reaches 0.0 validation MR-2 a third of the way into its
    schedule and stays there (80 validation frames of near-field people); mmengine's rule then
    keeps the first 0.0 checkpoint, a teacher trained a third as long as the others. Among
    checkpoints validation cannot tell apart, the one trained longest is kept."""
    rule_map = {'greater': lambda x, y: x >= y, 'less': lambda x, y: x <= y}
