# Table 4 baseline on tiny data: L2 on the RPN objectness logits and box deltas (same anchors).
_base_ = ['./mimic_rpn_r18-w8_tiny.py']
model = dict(
    connector=None, mimic_loss=dict(_delete_=True, type='RPNLogitsL2Loss', loss_weight=1.0))
