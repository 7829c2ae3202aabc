# Teacher of the built-in benchmark: the full-width Inception RPN (inception_4d, stride 16),
# trained from scratch on the vtest.avi training frames. Anchors: the paper's h:w ratios 2:1 and
# 3:1; scales 2, 4, 8 (32-128 px sides) because vtest people at 640x480 are 25-90 px tall
# (Caltech's 4, 8, 16 are for frames upscaled to a 1000 px short side).
_base_ = [
    '../../../configs/_base_/models/inception_rpn.py',
    './_base_/datasets/vtest.py',
    './_base_/schedules/vtest.py',
    '../../../configs/_base_/default_runtime.py',
]
model = dict(rpn_head=dict(anchor_generator=dict(scales=[2, 4, 8])))
# iteration-based logging and checkpoints
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
