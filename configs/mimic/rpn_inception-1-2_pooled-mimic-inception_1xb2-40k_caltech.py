# Eq. 3 variant (Sec. 3.2): RoI features pooled to a fixed 7x7 (RoIAlign) before the L2, without
# per-RoI normalisation; the paper prefers Eq. 4 (the default mimic config) for stability.
_base_ = './rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
model = dict(
    mimic_loss=dict(_delete_=True, type='PooledFeatureL2Loss', output_size=(7, 7),
                    loss_weight=1.0))
