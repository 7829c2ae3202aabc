# Table 11, "mimic": VOC stage 1, the 1/2-Inception RPN mimics the Inception Faster R-CNN.
_base_ = '../voc/faster-rcnn_inception-1-2_1xb2-4e_voc0712.py'

student = dict(
    type='RPN',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck=None,
    rpn_head={{_base_.model.rpn_head}},
    train_cfg=dict(rpn={{_base_.model.train_cfg.rpn}}),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0)))
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student=student,
    teacher='{{fileDirname}}/../voc/faster-rcnn_inception_1xb2-4e_voc0712.py',
    teacher_ckpt='work_dirs/faster-rcnn_inception_1xb2-4e_voc0712/epoch_4.pth',
    connector=dict(type='Conv1x1Connector'),  # 264 -> 528
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))
val_evaluator = dict(
    _delete_=True, type='ProposalRecallMetric', proposal_nums=(300, ), iou_thrs=(0.5, 0.7))
test_evaluator = val_evaluator
