# COCO recipe (configs, not runs; see README.md): mmdet's own Faster R-CNN R50-FPN 2x is the
# student and mimics mmdet's Faster R-CNN R101-FPN 2x on every FPN level (proposal-sampled
# feature mimic, Eq. 4), both at mmdet's 1333x800. mmmimic has not run it on COCO.
# The teacher checkpoint is mmdet's published one; nothing is downloaded at run time. Before
# training, download it to teacher_ckpt:
# wget -P checkpoints https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth  # noqa: E501
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'

default_scope = 'mmdet'
custom_imports = dict(imports=['mmmimic'], allow_failed_imports=False)

teacher_config = 'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher=teacher_config,
    teacher_ckpt='checkpoints/'
    'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth',
    mimic_levels='auto',  # each student level -> the teacher level of its stride (P2..P6)
    connector=dict(type='Conv1x1Connector'),  # one per pair, 256 -> 256 channels
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))

# what the one-flag path adds (tools/train.py --teacher): exact resume (mmdet's runtime has no
# RNGStateHook) and the check, before the first iteration, that the teacher is trained
custom_hooks = [dict(type='RNGStateHook'), dict(type='TeacherCheckHook', num_images=20)]
