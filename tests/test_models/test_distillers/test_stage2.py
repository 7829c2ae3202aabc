"""Stage 2 (paper Sec. 3.3): Faster R-CNN / R-FCN initialised from a stage-1 mimic checkpoint.

Exactly the student's backbone and RPN are loaded (everything else keeps the random init it
would have without a checkpoint), the loading is strict, and the RPN parameters get 1/10 of the
learning rate in the optimizer the Runner builds.
"""
import os.path as osp

import pytest
import torch
from mmmimic.testing.distill import build_distiller, make_batch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmdet.registry import MODELS
from mmmimic.utils import STUDENT_PREFIX, extract_state_dict

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')
STAGE2_DIR = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'stage2')
FASTER_CFG = osp.join(STAGE2_DIR, 'faster-rcnn_r18-w8_from-mimic-rpn_tiny.py')
RFCN_CFG = osp.join(STAGE2_DIR, 'rfcn_r18-w8_from-mimic-rpn_tiny.py')


@pytest.fixture(scope='module')
def stage1_ckpts(tmp_path_factory, teacher_ckpt):
    """A stage-1 distiller checkpoint (student.* + connector.*) and its student-only export,
    with every entry perturbed so that no value can coincide with a random init."""
    torch.manual_seed(1)
    distiller = build_distiller(teacher_ckpt)
    with torch.no_grad():
        for name, tensor in distiller.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) + 0.5)
    root = tmp_path_factory.mktemp('stage1')
    state_dict = distiller.state_dict()
    assert not any(k.startswith('teacher.') for k in state_dict)
    distiller_path = str(root / 'iter_200.pth')
    torch.save({'state_dict': state_dict, 'meta': {}}, distiller_path)
    student_path = str(root / 'student.pth')
    torch.save({'state_dict': extract_state_dict(
        state_dict, 'distiller', prefix=STUDENT_PREFIX, require_prefix=True)}, student_path)
    return dict(distiller=distiller_path, student=student_path)


def build_stage2(config, stage1_ckpt, seed=0):
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    if stage1_ckpt is None:  # the same detector without any checkpoint
        model_cfg.backbone.init_cfg = None
        model_cfg.rpn_head.pop('init_cfg')
    else:
        model_cfg.backbone.init_cfg.checkpoint = stage1_ckpt
        model_cfg.rpn_head.init_cfg.checkpoint = stage1_ckpt
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize('config', [FASTER_CFG, RFCN_CFG], ids=['faster-rcnn', 'rfcn'])
@pytest.mark.parametrize('ckpt_kind', ['student', 'distiller'])
def test_stage2_loads_exactly_backbone_and_rpn(config, ckpt_kind, stage1_ckpts):
    _, model = build_stage2(config, stage1_ckpts[ckpt_kind])
    _, scratch = build_stage2(config, None)
    stage1 = torch.load(stage1_ckpts['student'], weights_only=False)['state_dict']
    expected = {('rpn_head.' + k[len('bbox_head.'):] if k.startswith('bbox_head.') else k): v
                for k, v in stage1.items()}

    state, scratch_state = model.state_dict(), scratch.state_dict()
    loaded = {k for k in state if k in expected and torch.equal(state[k], expected[k])}
    from_stage1 = {k for k in state if k.startswith(('backbone.', 'rpn_head.'))}
    assert from_stage1 and loaded == from_stage1 == set(expected)
    # every other key (the RoI head) is exactly its own random init: the same seed, the same
    # construction, and only the RoI head initialised (the stage-1 loads draw no random numbers)
    torch.manual_seed(0)
    reference = MODELS.build(Config.fromfile(config).model)
    reference.roi_head.init_weights()
    reference_state = reference.state_dict()
    random_keys = set(state) - loaded
    assert random_keys and all(k.startswith('roi_head.') for k in random_keys)
    for key in random_keys:
        assert torch.equal(state[key], reference_state[key]), key
    for key in loaded:
        if state[key].is_floating_point():
            assert not torch.equal(state[key], scratch_state[key]), key
    if 'rfcn' in config:
        assert tuple(model.roi_head.bbox_head.roi_feat_size) == (7, 7)  # paper: 7x7 RoI output


def test_stage2_rpn_gets_a_tenth_of_the_learning_rate(stage1_ckpts):
    cfg, model = build_stage2(FASTER_CFG, stage1_ckpts['student'])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    lr_of = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lr_of[id(param)] = group['lr']
    rpn, other = [], []
    for name, param in model.named_parameters():
        (rpn if name.startswith('rpn_head.') else other).append(lr_of[id(param)])
    assert rpn and all(lr == pytest.approx(0.1 * base_lr) for lr in rpn)
    assert other and set(other) == {base_lr}
    assert len(rpn) == len([n for n, _ in model.rpn_head.named_parameters()])


def test_stage2_init_is_strict(tmp_path, stage1_ckpts):
    state = torch.load(stage1_ckpts['student'], weights_only=False)['state_dict']
    state.pop('bbox_head.rpn_cls.bias')
    broken = str(tmp_path / 'broken.pth')
    torch.save({'state_dict': state}, broken)
    with pytest.raises(KeyError, match='rpn_cls.bias'):
        build_stage2(FASTER_CFG, broken)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        build_stage2(FASTER_CFG, str(tmp_path / 'missing.pth'))
    cfg = Config.fromfile(FASTER_CFG)
    cfg.model.backbone.init_cfg.checkpoint = stage1_ckpts['student']
    cfg.model.backbone.init_cfg.prefix = 'neck.'
    with pytest.raises(KeyError, match=r'no "neck\." entries'):
        MODELS.build(cfg.model).init_weights()


def test_stage2_detector_trains_and_predicts(stage1_ckpts):
    _, model = build_stage2(RFCN_CFG, stage1_ckpts['student'])
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(losses)
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert results[0].pred_instances.bboxes.shape[1] == 4
