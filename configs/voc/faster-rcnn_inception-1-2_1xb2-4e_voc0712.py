# 1/2-Inception Faster R-CNN on VOC 07+12 (Tables 11-13): convs and RoI fc at 1/2 width.
_base_ = './faster-rcnn_inception_1xb2-4e_voc0712.py'

model = dict(
    backbone=dict(widen_factor=0.5),
    rpn_head=dict(in_channels=264, feat_channels=256),  # 528 * 0.5, 512 * 0.5
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=264),
        bbox_head=dict(in_channels=264, fc_out_channels=512)))
