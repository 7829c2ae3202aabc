# Table 4 baseline: L2 on the RPN logits and box deltas (same anchors). See README.md.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    connector=None,
    mimic_loss=dict(_delete_=True, type='RPNLogitsL2Loss', loss_weight=1.0))
