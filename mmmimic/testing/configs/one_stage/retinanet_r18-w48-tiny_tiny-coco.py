# The one-stage teacher of the one-flag tests: the tiny RetinaNet with a 48-channel FPN and head
# (so every pyramid pair gets a real 1x1 connector).
_base_ = ['./retinanet_r18-tiny_tiny-coco.py']

model = dict(
    neck=dict(out_channels=48), bbox_head=dict(in_channels=48, feat_channels=48))
