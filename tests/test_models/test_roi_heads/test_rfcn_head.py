"""R-FCN box head and RoI head: score maps, PS pooling, average voting, losses."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmmimic.models.roi_heads import RFCNBBoxHead


def _rois():
    return torch.tensor([[0, 0.0, 0.0, 30.0, 60.0], [1, 10.0, 5.0, 50.0, 40.0],
                         [1, 20.0, 20.0, 21.0, 21.0]])


@pytest.mark.parametrize('agnostic,feat_channels', [(True, 16), (False, None)])
def test_rfcn_bbox_head_shapes(agnostic, feat_channels):
    head = RFCNBBoxHead(in_channels=8, feat_channels=feat_channels, num_classes=3,
                        reg_class_agnostic=agnostic, featmap_stride=16)
    head.init_weights()
    assert head.rfcn_cls.out_channels == 49 * 4
    assert head.rfcn_reg.out_channels == 49 * (4 if agnostic else 12)
    assert not hasattr(head, 'fc_cls') and not hasattr(head, 'fc_reg')
    x = (torch.rand(2, 8, 4, 6), )
    cls_score, bbox_pred = head(x, _rois())
    assert cls_score.shape == (3, 4)
    assert bbox_pred.shape == (3, 4 if agnostic else 12)
    # Average voting: the scores are the mean of the 7x7 position-sensitive bins.
    cls_maps, _ = head.forward_score_maps(x)
    assert cls_maps.shape == (2, 49 * 4, 4, 6)


def test_rfcn_bbox_head_errors_name_the_problem():
    head = RFCNBBoxHead(in_channels=8, feat_channels=16, num_classes=1)
    with pytest.raises(ValueError, match='in_channels is 8 .* 5 channels'):
        head((torch.rand(1, 5, 4, 4), ), _rois()[:1])
    with pytest.raises(ValueError, match='single feature level'):
        head((torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2)), _rois()[:1])
    with pytest.raises(TypeError, match='with_avg_pool'):
        RFCNBBoxHead(in_channels=8, with_avg_pool=True)
    with pytest.raises(ValueError, match='bbox_roi_extractor must be None'):
        MODELS.build(dict(type='RFCNRoIHead', bbox_roi_extractor=dict(type='SingleRoIExtractor'),
                          bbox_head=dict(type='RFCNBBoxHead', in_channels=8)))


def test_rfcn_roi_head_loss_and_predict():
    init_default_scope('mmdet')
    roi_head = MODELS.build(
        dict(type='RFCNRoIHead',
             bbox_head=dict(type='RFCNBBoxHead', in_channels=8, feat_channels=16, num_classes=2),
             train_cfg=ConfigDict(
                 assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                               min_pos_iou=0.5),
                 sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25,
                              add_gt_as_proposals=True),
                 pos_weight=-1),
             test_cfg=ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                                 max_per_img=10)))
    roi_head.init_weights()
    x = (torch.rand(1, 8, 4, 6), )

    def proposals():  # loss() pops 'bboxes' into 'priors', so each call gets its own
        return InstanceData(bboxes=torch.tensor([[0., 0., 40., 60.], [5., 5., 60., 50.]]),
                            scores=torch.tensor([0.9, 0.8]))

    sample = DetDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[2., 2., 38., 58.]]),
                                       labels=torch.tensor([1]))
    losses = roi_head.loss(x, [proposals()], [sample])
    assert set(losses) >= {'loss_cls', 'loss_bbox', 'acc'}
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    assert roi_head.bbox_head.rfcn_cls.weight.grad is not None
    results = roi_head.predict(x, [proposals()], [sample], rescale=True)
    assert results[0].bboxes.shape[1] == 4 and len(results[0]) <= 10
    assert results[0].labels.max() < 2
