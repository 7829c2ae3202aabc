# Inception R-FCN on Caltech (Table 2): the two-stage mimic teacher. See README.md.
_base_ = [
    '../_base_/models/rfcn_inception.py',
    '../_base_/datasets/caltech.py',
    '../_base_/schedules/caltech_40k.py',
    '../_base_/default_runtime.py',
]

# Iteration-based schedule: log and checkpoint by iteration.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
