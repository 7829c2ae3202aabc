# Schedule of the vtest study (projects/vtest_mimic): the same for teacher and every
# student. The paper's SGD at lr 0.001 for 40k iterations does not fit a CPU budget; from-scratch
# training over a few thousand iterations is stable with AdamW + warm-up. The paper's shape is kept:
# one step down by 10x for the last quarter. The study's vtest_train_config rescales
# max_iters/milestones.
max_iters = 3000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=2)
randomness = dict(seed=0)
