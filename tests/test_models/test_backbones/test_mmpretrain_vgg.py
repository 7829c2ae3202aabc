"""mmpretrain's VGG16 as a teacher backbone, also where torchvision is missing."""
import sys

import torch

from mmdet.registry import MODELS
from mmmimic.compat import mmpretrain as mmpretrain_compat


def test_mmpretrain_vgg_through_mmdet_scope():
    # ``import mmmimic`` installed the hook when torchvision is missing (a no-op otherwise).
    installed = mmpretrain_compat.install_import_hook()
    assert installed == (not mmpretrain_compat.torchvision_available())
    vgg = MODELS.build(
        dict(type='mmpretrain.VGG', depth=11, num_classes=-1, out_indices=(4, ),
             with_last_pool=False))
    assert type(vgg).__module__.startswith('mmpretrain.')
    out, = vgg(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, 512, 4, 6)  # stride 16 without pool5
    # The stub never stays visible: torchvision is still unimportable if it was before.
    if not mmpretrain_compat.torchvision_available():
        assert not any(name.split('.')[0] == 'torchvision' for name in sys.modules)


def test_stub_box_ops_match_definitions():
    boxes = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 4.]])
    assert mmpretrain_compat.box_area(boxes).tolist() == [4.0, 6.0]
    iou = mmpretrain_compat.box_iou(boxes, boxes)
    torch.testing.assert_close(iou, torch.tensor([[1.0, 1 / 9], [1 / 9, 1.0]]))
    giou = mmpretrain_compat.generalized_box_iou(boxes, boxes)
    torch.testing.assert_close(giou[0, 1], torch.tensor(1 / 9 - (12 - 9) / 12))
