# COCO recipe, cross-resolution (configs, not runs; see README.md): the teacher sees mmdet's
# 1333x800 input, the student the same batch at half size (student_input_scale=0.5). Student
# level P_k (stride s on its half input, 2s in the teacher's pixels) pairs with the teacher's
# level of stride 2s: a level shift, no deconv; the student's coarsest level has no partner and
# is not mimicked (the pairing table printed at start says so). The student also predicts at
# half size; its boxes come back in original image coordinates. mmmimic has not run it on COCO.
# The teacher and its checkpoint are the 1x recipe's (mmdet's published one; nothing is
# downloaded at run time). Before training, download it to teacher_ckpt:
# wget -P checkpoints https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth  # noqa: E501
_base_ = './faster-rcnn_r50_fpn_mimic-r101_8xb2-1x_coco.py'

model = dict(
    student_input_scale=0.5,
    # the padded batch is halved exactly and every student level up to stride 32 meets its
    # teacher level cell for cell: pad to 2 x 32
    student=dict(data_preprocessor=dict(pad_size_divisor=64)))
