# VGG16 R-FCN teacher on Caltech (Li et al. 2017, Tables 8 and 14): stride-16 conv5_3 features,
# ImageNet-pretrained mmpretrain VGG16 (``type='mmpretrain.VGG'``), the paper's schedule.
_base_ = [
    '../_base_/models/vgg16_rfcn.py',
    '../_base_/datasets/caltech.py',
    '../_base_/schedules/caltech_40k.py',
    '../_base_/default_runtime.py',
]

# Iteration-based schedule: log and checkpoint by iteration.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
