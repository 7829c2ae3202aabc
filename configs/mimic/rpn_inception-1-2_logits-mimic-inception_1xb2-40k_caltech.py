# Table 4 baseline: logits mimic. L2 between the student's and the teacher's RPN objectness
# logits and box deltas on the same anchors (both RPNs share the anchor settings), no connector.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    connector=None,
    mimic_loss=dict(_delete_=True, type='RPNLogitsL2Loss', loss_weight=1.0))
