# Table 4 baseline: L2 over the whole inception_4d map. See README.md.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(mimic_loss=dict(_delete_=True, type='WholeFeatureL2Loss', loss_weight=1.0))
