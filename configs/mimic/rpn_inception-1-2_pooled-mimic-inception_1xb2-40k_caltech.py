# Eq. 3 variant (Sec. 3.2): RoIAlign 7x7 features, no per-RoI normalisation. See README.md.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    mimic_loss=dict(_delete_=True, type='PooledFeatureL2Loss', output_size=(7, 7),
                    loss_weight=1.0))
