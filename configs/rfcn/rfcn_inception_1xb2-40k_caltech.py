# Inception R-FCN on Caltech (Li et al. 2017, Table 2: MR-2 7.15%): short side 1000, 40k
# iterations, 7x7 position-sensitive bins, class-agnostic regression.
_base_ = [
    '../_base_/models/rfcn_inception.py',
    '../_base_/datasets/caltech.py',
    '../_base_/schedules/caltech_40k.py',
    '../_base_/default_runtime.py',
]

# Iteration-based schedule: log and checkpoint by iteration.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
