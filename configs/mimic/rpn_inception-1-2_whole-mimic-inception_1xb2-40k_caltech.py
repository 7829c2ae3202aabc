# Table 4 baseline: whole feature-map mimic. L2 over the entire (unpadded) inception_4d map,
# each image normalised by its element count, instead of inside the sampled proposals.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(mimic_loss=dict(_delete_=True, type='WholeFeatureL2Loss', loss_weight=1.0))
