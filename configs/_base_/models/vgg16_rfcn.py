# VGG16 R-FCN (teacher of Tables 8/14): mmpretrain's VGG16 through mmdet's scope mechanism
# (``type='mmpretrain.VGG'``), conv5_3 without pool5 (stride 16, 512 channels), ImageNet weights.
# Without torchvision, ``import mmmimic`` installs the documented mmpretrain import hook
# (mmmimic/compat/mmpretrain.py) that makes this type resolvable.
_base_ = './rfcn_inception.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VGG',
        depth=16,
        num_classes=-1,
        out_indices=(4, ),
        with_last_pool=False,
        frozen_stages=1,  # conv1-conv2 frozen, as in the VGG16 Faster R-CNN/R-FCN recipes
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/vgg/'
            'vgg16_batch256_imagenet_20210208-db26f1a5.pth')),
    rpn_head=dict(in_channels=512, feat_channels=512),
    roi_head=dict(bbox_head=dict(in_channels=512, feat_channels=1024)))
