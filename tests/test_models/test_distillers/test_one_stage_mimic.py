"""One-stage students: their own post-NMS detections are the mimic RoIs, their head losses are
mmdet's own, pyramids pair by stride (also at half input), and what cannot run is refused."""
import pytest
import torch
from mmengine.logging import MMLogger

from mmdet.models.dense_heads import RetinaHead
from mmdet.models.detectors import RetinaNet
from mmdet.registry import MODELS
from mmmimic.models.distillers.feature_mimic_distiller import FeatureMimicDistiller
from mmmimic.testing.distill import make_batch
from mmmimic.testing.one_stage import MMDET_ONE_STAGE, tiny_one_stage

FAMILIES = tuple(MMDET_ONE_STAGE)


@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """One teacher checkpoint per family (48 channels: every connector is a real 1x1 conv)."""
    folder = tmp_path_factory.mktemp('one_stage_teachers')
    paths = {}
    for family in FAMILIES:
        torch.manual_seed(0)
        paths[family] = str(folder / f'{family}.pth')
        torch.save({'state_dict': MODELS.build(tiny_one_stage(family, 48)).state_dict(),
                    'meta': {}}, paths[family])
    return paths


def one_stage_distiller(family, ckpt, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('mimic_levels', 'auto')
    return MODELS.build(dict(type='FeatureMimicDistiller', student=tiny_one_stage(family),
                             teacher=tiny_one_stage(family, 48), teacher_ckpt=ckpt, **kwargs))


def _values(losses):
    return {k: [float(x) for x in v] if isinstance(v, list) else float(v)
            for k, v in losses.items()}


@pytest.mark.parametrize('family', FAMILIES)
def test_head_losses_are_mmdets_and_every_pair_learns(family, teacher_ckpts):
    """The student's own losses equal mmdet's ``SingleStageDetector.loss`` on the same batch
    (bit for bit); with ``level_rule='all'`` ``loss_mimic`` reaches every pair's connector."""
    model = one_stage_distiller(family, teacher_ckpts[family], level_rule='all')
    assert model.one_stage and model.student_rpn is None
    strides = {'retinanet': 5, 'fcos': 5, 'atss': 5, 'gfl': 5, 'rtmdet': 3, 'yolox': 3}
    assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == \
        [(i, i) for i in range(strides[family])]
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    torch.manual_seed(1)
    losses = model.loss(inputs, samples)
    torch.manual_seed(1)
    expected = model.student.loss(inputs, samples)
    assert set(losses) == set(expected) | {'loss_mimic'}
    got = _values(losses)
    assert {k: got[k] for k in expected} == _values(expected)
    assert torch.isfinite(losses['loss_mimic']) and losses['loss_mimic'] > 0
    losses['loss_mimic'].backward()
    for k, connector in enumerate(model.connectors):
        grad = next(connector.parameters()).grad
        assert grad is not None and grad.abs().sum() > 0, (family, k)
    assert all(p.grad is None for p in model.student.bbox_head.parameters()), \
        'the detections place the RoIs only: no mimic gradient reaches the head'


def test_mimic_rois_are_the_students_detections(teacher_ckpts):
    """The RoIs are sampled from the head's own ``predict_by_feat`` on the step's outputs with
    the test settings at ``score_thr=0``; a fresh RetinaNet scores every box at its prior
    (0.01), under the test threshold 0.05, so the test settings would give no RoI at all."""
    model = one_stage_distiller('retinanet', teacher_ckpts['retinanet'])
    model.student.init_weights()  # as the Runner does: the classifier's prior bias
    head = model.student.bbox_head
    assert head.test_cfg.score_thr == 0.05 and model.mimic_cfg.proposal.score_thr == 0.0
    assert model.mimic_cfg.proposal.max_per_img == head.test_cfg.max_per_img == 100
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    outs = head(model.student.extract_feat(inputs))
    metas = [s.metainfo for s in samples]
    dets = model._student_proposals(outs, samples)
    expected = head.predict_by_feat(*outs, batch_img_metas=metas, cfg=model.mimic_cfg.proposal)
    for got, want in zip(dets, expected):
        assert len(got) == 100 and torch.equal(got.bboxes, want.bboxes)
        assert not got.bboxes.requires_grad
    at_test = head.predict_by_feat(*outs, batch_img_metas=metas, cfg=head.test_cfg)
    assert [len(d) for d in at_test] == [0, 0]
    rois = model.sample_rois(dets, samples)
    assert 0 < rois.size(0) <= 200
    det_boxes = torch.cat([d.bboxes for d in dets])
    for roi in rois[:, 1:]:  # every RoI is one of the student's detections
        assert (det_boxes == roi).all(dim=1).any()


def test_half_input_student_pairs_a_level_up_and_predicts_in_frame_pixels(teacher_ckpts):
    model = one_stage_distiller('retinanet', teacher_ckpts['retinanet'],
                                student_input_scale=0.5)
    assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == \
        [(0, 1), (1, 2), (2, 3), (3, 4)]
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_mimic']) and losses['loss_mimic'] > 0
    model.eval()
    model.student.bbox_head.test_cfg.score_thr = 0.0
    inputs, samples = make_batch(num_imgs=1, h=128, w=128)
    with torch.no_grad():
        full = model.predict(inputs, samples, rescale=False)[0].pred_instances
        half, half_samples = model.student_inputs(inputs, samples)
        direct = model.student.predict(half, half_samples, rescale=False)[0].pred_instances
    assert len(full) == len(direct) > 0
    assert torch.allclose(full.bboxes, direct.bboxes / 0.5)


def test_single_level_and_yolox_hook(teacher_ckpts):
    """A single pair (``student_feature``/``teacher_feature``) works on a one-stage student;
    mmdet's YOLOXModeSwitchHook reaches the student's head through ``model.bbox_head``."""
    model = one_stage_distiller('yolox', teacher_ckpts['yolox'], mimic_levels=None,
                                student_feature=0, teacher_feature=0)
    inputs, samples = make_batch(num_imgs=2, h=128, w=128)
    assert model.loss(inputs, samples)['loss_mimic'] > 0
    assert model.bbox_head is model.student.bbox_head and not model.bbox_head.use_l1
    from mmdet.engine.hooks import YOLOXModeSwitchHook

    class Loader:
        class dataset:
            @staticmethod
            def update_skip_type_keys(keys):
                pass

    class Runner:
        epoch, max_epochs, train_dataloader = 9, 10, Loader
        logger = MMLogger.get_current_instance()
    Runner.model = model
    YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(Runner)
    assert model.student.bbox_head.use_l1
    assert 'loss_l1' in model.loss(inputs, samples)


def test_refusals_name_the_detector_and_head(teacher_ckpts):
    ckpt = teacher_ckpts['retinanet']

    @MODELS.register_module(force=True)
    class LossOverridingRetinaNet(RetinaNet):
        def loss(self, batch_inputs, batch_data_samples):
            return super().loss(batch_inputs, batch_data_samples)

    @MODELS.register_module(force=True)
    class LossOverridingRetinaHead(RetinaHead):
        def loss(self, x, batch_data_samples):
            return super().loss(x, batch_data_samples)

    student = tiny_one_stage('retinanet')
    student.type = 'LossOverridingRetinaNet'
    with pytest.raises(TypeError, match='the one-stage student LossOverridingRetinaNet is '
                       'refused: it overrides SingleStageDetector.loss'):
        MODELS.build(dict(type='FeatureMimicDistiller', student=student,
                          teacher=tiny_one_stage('retinanet', 48), teacher_ckpt=ckpt))
    student = tiny_one_stage('retinanet')
    student.bbox_head.type = 'LossOverridingRetinaHead'
    with pytest.raises(TypeError, match='its bbox_head LossOverridingRetinaHead overrides '
                       'BaseDenseHead.loss'):
        MODELS.build(dict(type='FeatureMimicDistiller', student=student,
                          teacher=tiny_one_stage('retinanet', 48), teacher_ckpt=ckpt))
    with pytest.raises(TypeError, match='a one-stage student has no RPN head: use feature '
                       'mimic'):
        one_stage_distiller('retinanet', ckpt, mimic_levels=None,
                            mimic_loss=dict(type='RPNLogitsL2Loss'))


def test_head_without_predict_by_feat_is_refused():
    from mmmimic.models.distillers import checks

    class NoPredictHead(torch.nn.Module):
        pass

    student = MODELS.build(tiny_one_stage('retinanet'))
    student.bbox_head = NoPredictHead()
    with pytest.raises(TypeError, match='its bbox_head NoPredictHead is not an mmdet '
                       'BaseDenseHead with predict_by_feat'):
        checks.check_student_rpn(student)
    assert FeatureMimicDistiller.check_student_rpn(
        MODELS.build(tiny_one_stage('fcos'))) == 'one_stage'


@pytest.mark.parametrize('family', ['retinanet', 'fcos', 'atss', 'gfl', 'rtmdet'])
def test_top_candidates_leave_the_detections_unchanged(family):
    """Masking every logit below each level's nms_pre-th best (the mimic RoIs' cheap pass)
    gives the very detections of the full predict step at score_thr=0, on 80 classes."""
    from mmmimic.models.dense_heads.proposals import one_stage_detections, top_candidates_only
    from mmmimic.models.distillers.checks import one_stage_proposal_cfg
    torch.manual_seed(0)
    student = MODELS.build(tiny_one_stage(family, num_classes=80))
    student.init_weights()
    head = student.bbox_head
    cfg = one_stage_proposal_cfg(head.test_cfg)
    cfg.nms_pre = 300  # below the anchors x classes of every level but the coarsest
    inputs, samples = make_batch(num_imgs=2, h=160, w=192)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        outs = head(student.extract_feat(inputs))
        full = head.predict_by_feat(*outs, batch_img_metas=metas, cfg=cfg)
    masked = top_candidates_only(head, outs[0], cfg)
    assert masked is not None
    kept = [int(torch.isfinite(level).sum()) for level in masked]
    whole = [level.numel() for level in outs[0]]
    assert all(k < n for k, n in zip(kept[:3], whole[:3])), (kept, whole)
    fast = one_stage_detections(head, outs, metas, cfg)
    for got, want in zip(fast, full):
        assert len(got) == len(want) > 0
        assert torch.equal(got.scores, want.scores)
        # the same (score, label, box) rows; exactly tied scores may come in another order
        # (RTMDet's tiny head gives a few ties here), as torch's unstable sort leaves them
        rows = [sorted(zip(d.scores.tolist(), d.labels.tolist(), d.bboxes.tolist()))
                for d in (got, want)]
        assert rows[0] == rows[1]


def test_mimic_predict_settings_cap_nms_pre():
    """score_thr 0 for every head; nms_pre at most 1000 (RTMDet tests with 30000), the rest of
    the head's test settings kept."""
    from mmmimic.models.distillers.checks import one_stage_proposal_cfg
    rtmdet = tiny_one_stage('rtmdet').test_cfg
    cfg = one_stage_proposal_cfg(rtmdet)
    assert (rtmdet.nms_pre, rtmdet.score_thr) == (30000, 0.001)
    assert (cfg.nms_pre, cfg.score_thr, cfg.max_per_img, cfg.nms) == \
        (1000, 0.0, rtmdet.max_per_img, rtmdet.nms)
    assert one_stage_proposal_cfg(dict(nms_pre=-1, score_thr=0.05)).nms_pre == 1000
    assert one_stage_proposal_cfg(dict(nms_pre=500)).nms_pre == 500
    assert 'nms_pre' not in one_stage_proposal_cfg(tiny_one_stage('yolox').test_cfg)


def test_a_batch_resize_that_leaves_half_cells_is_refused(teacher_ckpts):
    """YOLOX's BatchSyncRandomResize resizes to multiples of 32; at half input that is 16, half
    a cell of the stride-32 backbone level: refused naming the key and the value that works."""
    student = tiny_one_stage('yolox')
    assert student.data_preprocessor.batch_augments[0].size_divisor == 32
    with pytest.raises(ValueError, match=r'data_preprocessor.batch_augments\[0\].size_divisor=32 '
                       r'at student_input_scale=0.5 .* coarsest stride 32: set size_divisor to '
                       r'a multiple of 64'):
        MODELS.build(dict(type='FeatureMimicDistiller', student=student,
                          teacher=tiny_one_stage('yolox', 48),
                          teacher_ckpt=teacher_ckpts['yolox'], mimic_levels='auto',
                          student_input_scale=0.5))
    student.data_preprocessor.batch_augments[0].size_divisor = 64
    model = MODELS.build(dict(type='FeatureMimicDistiller', student=student,
                              teacher=tiny_one_stage('yolox', 48),
                              teacher_ckpt=teacher_ckpts['yolox'], mimic_levels='auto',
                              student_input_scale=0.5))
    assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == [(0, 1), (1, 2)]
