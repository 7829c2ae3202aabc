# Table 4 baseline on tiny data: L2 over the whole (unpadded) feature map.
_base_ = ['./mimic_rpn_r18-w8_tiny.py']
model = dict(mimic_loss=dict(_delete_=True, type='WholeFeatureL2Loss', loss_weight=1.0))
