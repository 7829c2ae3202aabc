# 1/4-Inception Faster R-CNN on VOC 07+12 (Tables 11-13): convs and RoI fc at 1/4 width.
_base_ = './faster-rcnn_inception_1xb2-4e_voc0712.py'

model = dict(
    backbone=dict(widen_factor=0.25),
    rpn_head=dict(in_channels=132, feat_channels=128),  # 528 * 0.25, 512 * 0.25
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=132),
        bbox_head=dict(in_channels=132, fc_out_channels=256)))
