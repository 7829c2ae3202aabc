# COCO recipe (configs, not runs; see README.md): mmdet's own RetinaNet R50-FPN 2x is the
# student and mimics mmdet's RetinaNet R101-FPN 2x on every FPN level (feature mimic, Eq. 4, on
# RoIs sampled from the student's own detections), both at mmdet's 1333x800. mmmimic has not
# run it on COCO.
# The teacher checkpoint is mmdet's published one; nothing is downloaded at run time. Before
# training, download it to teacher_ckpt:
# wget -P checkpoints https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth  # noqa: E501
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'

default_scope = 'mmdet'
custom_imports = dict(imports=['mmmimic'], allow_failed_imports=False)

teacher_config = 'mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'
model = dict(
    _delete_=True,
    type='FeatureMimicDistiller',
    student={{_base_.model}},
    teacher=teacher_config,
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth',
    mimic_levels='auto',  # each student level -> the teacher level of its stride (P3..P7)
    connector=dict(type='Conv1x1Connector'),  # one per pair, 256 -> 256 channels
    mimic_loss=dict(type='ProposalSampledL2Loss', loss_weight=1.0))

# what the one-flag path adds (tools/train.py --teacher): exact resume (mmdet's runtime has no
# RNGStateHook) and the check, before the first iteration, that the teacher is trained
custom_hooks = [dict(type='RNGStateHook'), dict(type='TeacherCheckHook', num_images=20)]
