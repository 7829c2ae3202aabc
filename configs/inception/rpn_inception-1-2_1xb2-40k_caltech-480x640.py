# 1/2-Inception RPN on 480x640 Caltech input (Table 10, row "480x640"). See README.md.
_base_ = [
    '../_base_/models/inception_rpn.py',
    '../_base_/datasets/caltech_480x640.py',
    '../_base_/schedules/caltech_40k.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)

model = dict(
    backbone=dict(widen_factor=0.5),
    rpn_head=dict(in_channels=264, feat_channels=256))  # 528 * 0.5, 512 * 0.5
