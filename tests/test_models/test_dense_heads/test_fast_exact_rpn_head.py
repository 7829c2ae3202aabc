"""FastExactRPNHead: mmdet's RPNHead outputs bit for bit, through the exact cheap pass."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

HEAD = dict(in_channels=8, feat_channels=8,
            anchor_generator=dict(type='AnchorGenerator', scales=[2, 4, 8],
                                  ratios=[0.5, 1.0, 2.0], strides=[16]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                            target_stds=[1.] * 4),
            train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                                         neg_iou_thr=0.3, min_pos_iou=0.3),
                           sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5),
                           allowed_border=-1, pos_weight=-1, debug=False),
            test_cfg=dict(nms_pre=6000, max_per_img=300, min_bbox_size=0,
                          nms=dict(type='nms', iou_threshold=0.7)))


def heads(**kwargs):
    torch.manual_seed(0)
    plain = MODELS.build(dict(HEAD, type='RPNHead'))
    fast = MODELS.build(dict(HEAD, type='FastExactRPNHead', **kwargs))
    fast.load_state_dict(plain.state_dict())  # an RPNHead checkpoint loads as is
    for head in (plain, fast):  # as a config file gives it
        head.test_cfg = ConfigDict(HEAD['test_cfg'])
    return plain.eval(), fast.eval()


def samples(batch, shape, scale):
    out = []
    for _ in range(batch):
        s = DetDataSample()
        s.set_metainfo(dict(img_shape=shape, pad_shape=shape, ori_shape=shape,
                            scale_factor=scale))
        out.append(s)
    return out


def calls_of(head):
    """Record the nms_pre of every call of mmdet's full predict step."""
    calls, original = [], head.full_predict_by_feat

    def spy(*args, **kwargs):
        calls.append(kwargs['cfg'].nms_pre)
        return original(*args, **kwargs)

    head.full_predict_by_feat = spy
    return calls


@pytest.mark.parametrize('rescale', [False, True])
def test_predict_equals_rpn_heads_and_takes_the_cheap_pass(rescale):
    plain, fast = heads()
    g = torch.Generator().manual_seed(3)
    feats = (torch.randn(2, 8, 40, 50, generator=g) * 4, )  # 18000 anchors per image
    data_samples = samples(2, (640, 800), (1.6, 1.25))
    calls = calls_of(fast)
    with torch.no_grad():
        want = plain.predict(feats, data_samples, rescale=rescale)
        got = fast.predict(feats, data_samples, rescale=rescale)
    assert calls == [500]  # the default ladder's first rung for the batch, proven for both
    for a, b in zip(got, want):
        assert len(a) == 300
        assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)
    if rescale:  # the boxes are in the original pixels: x within 800 / 1.6 = 500
        assert 400 < max(float(r.bboxes[:, 2].max()) for r in got) <= 500 + 1e-3


def test_off_and_unsupported_calls_take_mmdets_step():
    _, fast = heads(proposal_candidates=None)
    feats = (torch.randn(1, 8, 40, 50), )
    calls = calls_of(fast)
    with torch.no_grad():
        fast.predict(feats, samples(1, (640, 800), (1., 1.)))
    assert calls == [6000]
    _, fast = heads()
    calls = calls_of(fast)
    cls, box = fast(feats)
    fast.predict_by_feat(cls, box, batch_img_metas=[samples(1, (640, 800), (1., 1.))[0].metainfo],
                         cfg=ConfigDict(HEAD['test_cfg'], nms=dict(type='soft_nms',
                                                                   iou_threshold=0.7)))
    assert calls == [6000]  # soft-NMS: no prefix property


@pytest.mark.parametrize('bad', [-1, 2.5, '1000', (1000, 500)])
def test_bad_candidate_counts_are_refused(bad):
    with pytest.raises(ValueError, match='proposal_candidates'):
        MODELS.build(dict(HEAD, type='FastExactRPNHead', proposal_candidates=bad))


def test_two_stage_training_proposals_match():
    """loss_and_predict (a two-stage detector's training proposals) gives RPNHead's proposals."""
    plain, fast = heads()
    g = torch.Generator().manual_seed(5)
    feats = (torch.randn(2, 8, 40, 50, generator=g) * 4, )
    data_samples = samples(2, (640, 800), (1., 1.))
    for s in data_samples:
        s.gt_instances = InstanceData(bboxes=torch.tensor([[100., 100., 180., 300.]]),
                                      labels=torch.tensor([0]))
    cfg = ConfigDict(HEAD['test_cfg'], max_per_img=300)
    _, want = plain.train().loss_and_predict(feats, data_samples, proposal_cfg=cfg)
    _, got = fast.train().loss_and_predict(feats, data_samples, proposal_cfg=cfg)
    for a, b in zip(got, want):
        assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)


@pytest.mark.parametrize('config,heads', [
    ('projects/vtest_mimic/configs/rpn_inception-1-2-deconv_vtest-half.py', 1),
    ('projects/vtest_mimic/configs/rfcn_inception_vtest.py', 1),
    ('projects/vtest_mimic/configs/rpn_inception-1-4-deconv_mimic-inception_vtest-half.py',
     1),  # student
])
def test_use_fast_exact_rpn_turns_every_rpn_head(repo_root, config, heads):
    from mmengine.config import Config

    from mmmimic.models.dense_heads import use_fast_exact_rpn
    cfg = Config.fromfile(f'{repo_root}/{config}')
    assert use_fast_exact_rpn(cfg.model, 500) == heads
    text = str(cfg.model)
    assert text.count("'FastExactRPNHead'") == heads and "'RPNHead'" not in text
    assert text.count("'proposal_candidates': 500") == heads
    assert use_fast_exact_rpn(cfg.model) == 0  # nothing left to turn
