"""Configs of stage 2 (Tables 6, 12), two-stage mimic (Tables 9, 13) and cross-scale mimic
(Table 10): every file parses with the paper's settings; the Caltech ones build."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmmimic  # noqa: F401
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CONFIG_DIR = osp.join(ROOT, 'configs')
CONFIGS = sorted(
    glob.glob(osp.join(CONFIG_DIR, 'stage2', '*.py')) +
    glob.glob(osp.join(CONFIG_DIR, 'two_stage_mimic', '*.py')) +
    glob.glob(osp.join(CONFIG_DIR, 'cross_scale', '*.py')))


def _student(model):
    return model.student if model.type == 'FeatureMimicDistiller' else model


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_with_paper_settings(path):
    cfg = Config.fromfile(path)
    with open(path) as f:
        assert 'Table' in f.readline()  # every config says which table/row it is
    model = cfg.model
    if model.type == 'FeatureMimicDistiller':
        assert osp.isfile(model.teacher), model.teacher
    student = _student(model)
    if 'from-mimic-rpn' in path or 'two-stage' in path:
        # stage 2: backbone + RPN from the stage-1 student, the rest random, RPN at lr / 10
        assert student.backbone.init_cfg.type == 'MimicStudentInit'
        assert student.backbone.init_cfg.prefix == 'backbone.'
        assert student.rpn_head.init_cfg.prefix == 'bbox_head.'
        assert student.backbone.init_cfg.checkpoint == student.rpn_head.init_cfg.checkpoint
        assert 'init_cfg' not in student.roi_head.bbox_head or \
            student.roi_head.bbox_head.init_cfg.get('type') != 'MimicStudentInit'
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'rpn_head': dict(lr_mult=0.1)}
        if student.type == 'RFCN':
            assert student.roi_head.bbox_head.roi_feat_size == 7
    if 'two-stage' in path:
        assert model.roi_mimic_cls_loss.type == model.roi_mimic_bbox_loss.type == \
            'RoILogitsL2Loss'
    if 'cross_scale' in path:
        assert student.neck.type == 'Deconv2xNeck'
        assert student.rpn_head.anchor_generator.strides == [8]
        if model.type == 'FeatureMimicDistiller':
            assert model.student_input_scale == 0.5
            resize = cfg.train_dataloader.dataset.pipeline[2]
            assert resize.scale == (1280, 960)  # student: exactly 480x640


def _random_ckpt(config_path, tmp_path, name):
    model = MODELS.build(Config.fromfile(config_path).model)
    path = str(tmp_path / name)
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_table9_two_stage_mimic_builds(tmp_path):
    cfg = Config.fromfile(osp.join(
        CONFIG_DIR, 'two_stage_mimic',
        'rfcn_inception-1-2_two-stage-mimic-inception_1xb2-40k_caltech.py'))
    cfg.model.teacher_ckpt = _random_ckpt(cfg.model.teacher, tmp_path, 'teacher.pth')
    stage1 = _random_ckpt(
        osp.join(CONFIG_DIR, 'inception', 'rpn_inception-1-2_1xb2-40k_caltech.py'), tmp_path,
        's1.pth')
    cfg.model.student.backbone.init_cfg.checkpoint = stage1
    cfg.model.student.rpn_head.init_cfg.checkpoint = stage1
    model = MODELS.build(cfg.model)
    model.init_weights()
    s1 = torch.load(stage1, weights_only=False)['state_dict']
    state = model.student.state_dict()
    for key, value in s1.items():
        key = 'rpn_head.' + key[len('bbox_head.'):] if key.startswith('bbox_head.') else key
        assert torch.equal(state[key], value), key
    assert model.with_roi_mimic and model.teacher_stride == model.student_stride == 16


def test_table10_cross_scale_builds(tmp_path):
    cfg = Config.fromfile(osp.join(
        CONFIG_DIR, 'cross_scale',
        'rpn_inception-1-2-deconv_mimic-inception_1xb2-40k_caltech-480x640.py'))
    cfg.model.teacher_ckpt = _random_ckpt(cfg.model.teacher, tmp_path, 'teacher.pth')
    model = MODELS.build(cfg.model)
    assert model.student_stride == 8 and model.teacher_stride == 16
    assert (model.connector.in_channels, model.connector.out_channels) == (264, 528)
