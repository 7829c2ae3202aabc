# The paper's Caltech schedule (Li et al. 2017, Sec. 4.1): SGD, lr 0.001 for 30k iterations then
# 0.0001 for 10k more, momentum 0.9, weight decay 0.0005.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=40000, milestones=[30000], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005))
auto_scale_lr = dict(enable=False, base_batch_size=1)
# Iteration-based logging/checkpointing (default_hooks, log_processor) is set by the experiment
# configs: mmengine forbids the same key in two bases (default_runtime.py defines them).
