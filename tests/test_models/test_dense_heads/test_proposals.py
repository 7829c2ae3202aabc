"""The exact cheap pass of an RPN's predict step (mmmimic.models.dense_heads.proposals)."""
import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import MODELS
from mmmimic.models.dense_heads.proposals import (candidate_ladder, fast_path_applies,
                                                  rpn_proposals)

ANCHORS = dict(type='AnchorGenerator', scales=[2, 4, 8], ratios=[0.5, 1.0, 2.0], strides=[16])


def rpn_head(strides=(16, )):
    return MODELS.build(dict(
        type='RPNHead', in_channels=4, feat_channels=4,
        anchor_generator=dict(ANCHORS, strides=list(strides)),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=[1.] * 4)))


def predict_cfg(nms_pre=6000, max_per_img=300, nms_type='nms'):
    return ConfigDict(nms_pre=nms_pre, max_per_img=max_per_img, min_bbox_size=0,
                      nms=dict(type=nms_type, iou_threshold=0.7))


def head_outputs(sizes, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    cls = [torch.randn(batch, 9, h, w, generator=g) for h, w in sizes]
    box = [torch.randn(batch, 36, h, w, generator=g) * 0.2 for h, w in sizes]
    return cls, box


def metas(batch, shape):
    return [dict(img_shape=shape, pad_shape=shape, scale_factor=(1., 1.))] * batch


class Spy:
    """Records the ``nms_pre`` and the batch size of every ``predict_by_feat`` call."""

    def __init__(self, head):
        self.calls, self.original = [], head.predict_by_feat
        head.predict_by_feat = self

    def __call__(self, cls_scores, bbox_preds, batch_img_metas, cfg, **kwargs):
        self.calls.append((cfg.nms_pre, cls_scores[0].shape[0]))
        return self.original(cls_scores, bbox_preds, batch_img_metas=batch_img_metas, cfg=cfg,
                             **kwargs)


def assert_same(fast, full):
    assert len(fast) == len(full)
    for a, b in zip(fast, full):
        assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)


@pytest.mark.parametrize('strides,sizes', [((16, ), [(40, 50)]),
                                           ((8, 16), [(80, 100), (40, 50)])])
def test_cheap_pass_equals_the_full_predict_step(strides, sizes):
    head = rpn_head(strides)
    cls, box = head_outputs(sizes)
    shape = (sizes[-1][0] * 16, sizes[-1][1] * 16)
    full = head.predict_by_feat(cls, box, batch_img_metas=metas(2, shape), cfg=predict_cfg())
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(2, shape), predict_cfg(), candidates=1000)
    assert_same(fast, full)
    assert spy.calls == [(1000, 2)]  # one cheap pass for the batch, nothing recomputed
    assert all(len(r) == 300 for r in fast)


def test_an_image_the_cheap_pass_cannot_prove_is_recomputed_alone():
    head = rpn_head()
    cls, box = head_outputs([(40, 50)])
    # image 1: its best 1000+ candidates lie in one 12x12-cell block and are stretched to cover
    # the whole image (dw = dh = 3), so NMS leaves one of them: the cheap pass finds far fewer
    # than 300 proposals, the full step finds 300
    cls[0][1, :, 10:22, 10:22] += 6.
    box[0][1, 2::4, 10:22, 10:22] = 3.
    box[0][1, 3::4, 10:22, 10:22] = 3.
    shape = (640, 800)
    full = head.predict_by_feat(cls, box, batch_img_metas=metas(2, shape), cfg=predict_cfg())
    cheap = head.predict_by_feat(cls, box, batch_img_metas=metas(2, shape),
                                 cfg=predict_cfg(nms_pre=1000))
    assert len(cheap[0]) == 300 and len(cheap[1]) < 100 and len(full[1]) == 300  # premise
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(2, shape), predict_cfg(), candidates=1000)
    assert_same(fast, full)
    assert spy.calls == [(1000, 2), (6000, 1)]  # only image 1 takes the full step


def test_a_ladder_tries_its_rungs_in_turn_on_the_images_left():
    head = rpn_head()
    cls, box = head_outputs([(40, 50)], batch=3)
    # image 1: 576 boosted candidates stretched over the image (NMS keeps one of them): 500
    # candidates give 105 proposals, 1000 give 300, provably the full step's; image 2: 1296 such
    # candidates, so neither rung finds 300
    cls[0][1, :, 10:18, 10:18] += 3.
    box[0][1, 2::4, 10:18, 10:18] = 3.  # dw
    box[0][1, 3::4, 10:18, 10:18] = 3.  # dh
    cls[0][2, :, 10:22, 10:22] += 6.
    box[0][2, 2::4, 10:22, 10:22] = 3.
    box[0][2, 3::4, 10:22, 10:22] = 3.
    shape = (640, 800)
    full = head.predict_by_feat(cls, box, batch_img_metas=metas(3, shape), cfg=predict_cfg())
    by_rung = {k: head.predict_by_feat(cls, box, batch_img_metas=metas(3, shape),
                                       cfg=predict_cfg(nms_pre=k)) for k in (500, 1000)}
    assert [len(r) for r in by_rung[500]][:2] == [300, 105]  # the premise
    assert len(by_rung[1000][1]) == 300 and len(by_rung[1000][2]) < 300
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(3, shape), predict_cfg(), candidates=(500, 1000))
    assert_same(fast, full)
    assert spy.calls == [(500, 3), (1000, 2), (6000, 1)]
    spy.calls.clear()  # a rung the map cannot cut (>= its 18000 anchors) is skipped
    fast = rpn_proposals(head, cls, box, metas(3, shape), predict_cfg(nms_pre=-1),
                         candidates=(500, 1000, 18000, 20000))
    assert_same(fast, head.predict_by_feat(cls, box, batch_img_metas=metas(3, shape),
                                           cfg=predict_cfg(nms_pre=-1)))
    assert spy.calls[:2] == [(500, 3), (1000, 2)] and spy.calls[2][0] == -1


@pytest.mark.parametrize('candidates,rungs', [(None, ()), (0, ()), ((), ()), (1000, (1000, )),
                                              ([500, 1000], (500, 1000))])
def test_candidate_ladder(candidates, rungs):
    assert candidate_ladder(candidates) == rungs


@pytest.mark.parametrize('bad', [-1, (1000, 500), (500, 500), (0, 500), 2.5, True, '1000',
                                 (500, None)])
def test_bad_ladders_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=r'mimic_cfg\.proposal_candidates must be'):
        candidate_ladder(bad, 'mimic_cfg.proposal_candidates')


def test_fewer_survivors_than_max_per_img_force_the_full_step():
    head = rpn_head()
    cls, box = head_outputs([(40, 50)], batch=1)
    cfg = predict_cfg(max_per_img=1000)  # 1000 survivors of 1000 candidates: none suppressed
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(1, (640, 800)), cfg, candidates=1000)
    full = spy.original(cls, box, batch_img_metas=metas(1, (640, 800)), cfg=cfg)
    assert_same(fast, full)
    assert spy.calls == [(1000, 1), (6000, 1)]


def test_a_cut_level_whose_left_out_candidates_outscore_the_result_forces_the_full_step():
    head = rpn_head(strides=(8, 16))
    cls, box = head_outputs([(80, 100), (40, 50)], batch=1)
    g = torch.Generator().manual_seed(1)

    def distinct(low, high, shape):  # distinct logits: no ties, so only the left-out rule acts
        n = int(torch.tensor(shape).prod())
        return torch.linspace(low, high, n)[torch.randperm(n, generator=g)].reshape(shape)

    # level 0 outscores level 1 everywhere, but its best 1296 candidates lie in one block and are
    # stretched over the whole image: the cheap pass keeps one of them and fills the 300 from
    # level 1, below level 0's first left-out candidate
    cls[0][0] = distinct(0., 2., (9, 80, 100))
    cls[0][0, :, 10:22, 10:22] = distinct(2.1, 3., (9, 12, 12))
    box[0][0, 2::4, 10:22, 10:22] = 3.
    box[0][0, 3::4, 10:22, 10:22] = 3.
    cls[1][0] = distinct(-2., -0.1, (9, 40, 50))
    shape = (640, 800)
    full = head.predict_by_feat(cls, box, batch_img_metas=metas(1, shape), cfg=predict_cfg())
    cheap = head.predict_by_feat(cls, box, batch_img_metas=metas(1, shape),
                                 cfg=predict_cfg(nms_pre=1000))
    assert len(cheap[0]) == 300 and not torch.equal(cheap[0].scores, full[0].scores)  # premise
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(1, shape), predict_cfg(), candidates=1000)
    assert spy.calls == [(1000, 1), (6000, 1)]
    assert_same(fast, full)


def test_tied_scores_among_the_contenders_force_the_full_step():
    head = rpn_head()
    cls, box = head_outputs([(40, 50)], batch=2)
    cls[0][1, :, :10, :10] = 30.  # sigmoid(30) == 1.0 in float32: 900 tied, overlapping boxes
    full = head.predict_by_feat(cls, box, batch_img_metas=metas(2, (640, 800)), cfg=predict_cfg())
    assert (full[1].scores == 1.0).sum() > 1  # the premise: ties reach the result
    spy = Spy(head)
    fast = rpn_proposals(head, cls, box, metas(2, (640, 800)), predict_cfg(), candidates=1000)
    assert spy.calls == [(1000, 2), (6000, 1)]  # image 1 only
    assert_same(fast, full)


@pytest.mark.parametrize('cfg,candidates', [
    (predict_cfg(nms_type='soft_nms'), 1000),  # soft-NMS re-scores: no prefix property
    (predict_cfg(nms_pre=800), 1000),  # the cheap pass would not be cheaper
    (predict_cfg(), None),
    (predict_cfg(), 0)])
def test_full_step_when_the_cheap_pass_does_not_apply(cfg, candidates):
    assert not fast_path_applies(cfg, candidates)
    head = rpn_head()
    cls, box = head_outputs([(20, 25)], batch=1)
    spy = Spy(head)
    rpn_proposals(head, cls, box, metas(1, (320, 400)), cfg, candidates=candidates)
    assert spy.calls == [(cfg.nms_pre, 1)]


def test_more_proposals_wanted_than_candidates_take_one_full_step():
    head = rpn_head()
    cls, box = head_outputs([(40, 50)], batch=1)
    spy = Spy(head)
    cfg = predict_cfg(nms_pre=12000, max_per_img=2000)  # Faster R-CNN's training proposals
    rpn_proposals(head, cls, box, metas(1, (640, 800)), cfg, candidates=1000)
    assert spy.calls == [(12000, 1)]


def test_small_maps_take_one_full_step():
    head = rpn_head()
    cls, box = head_outputs([(10, 10)])  # 900 anchors <= 1000: nothing to cut
    spy = Spy(head)
    rpn_proposals(head, cls, box, metas(2, (160, 160)), predict_cfg(), candidates=1000)
    assert spy.calls == [(6000, 2)]
    assert fast_path_applies(predict_cfg(nms_pre=-1), 1000)  # no nms_pre: every anchor
