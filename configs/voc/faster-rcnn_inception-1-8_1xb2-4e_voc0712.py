# 1/8-Inception Faster R-CNN on VOC 07+12 (Tables 11-13): convs and RoI fc at 1/8 width.
_base_ = './faster-rcnn_inception_1xb2-4e_voc0712.py'

model = dict(
    backbone=dict(widen_factor=0.125),
    rpn_head=dict(in_channels=66, feat_channels=64),  # 528 * 0.125, 512 * 0.125
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=66),
        bbox_head=dict(in_channels=66, fc_out_channels=128)))
