"""Every mimic config parses into a FeatureMimicDistiller whose teacher config exists; the main
Caltech config builds (with a random teacher checkpoint) with the paper's settings."""
import glob
import os.path as osp

import pytest
import torch
from mmmimic.testing.distill import CONFIG_DIR
from mmengine.config import Config

from mmdet.registry import MODELS

MIMIC_DIR = osp.normpath(osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'mimic'))
CONFIGS = sorted(glob.glob(osp.join(MIMIC_DIR, '*.py'))) + \
    sorted(glob.glob(osp.join(CONFIG_DIR, 'mimic*.py')) +
           glob.glob(osp.join(CONFIG_DIR, '*-mimic*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_mimic_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'FeatureMimicDistiller'
    assert osp.isfile(cfg.model.teacher), cfg.model.teacher
    assert cfg.model.student.type == 'RPN'
    assert cfg.model.mimic_loss.type in ('ProposalSampledL2Loss', 'PooledFeatureL2Loss',
                                         'WholeFeatureL2Loss', 'RPNLogitsL2Loss')
    teacher = Config.fromfile(cfg.model.teacher).model
    # logits mimic needs both RPNs on the same anchors
    assert teacher.rpn_head.anchor_generator == cfg.model.student.rpn_head.anchor_generator


def test_caltech_mimic_config_builds(tmp_path):
    cfg = Config.fromfile(
        osp.join(MIMIC_DIR, 'rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'))
    teacher = MODELS.build(Config.fromfile(cfg.model.teacher).model)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    cfg.model.teacher_ckpt = ckpt
    model = MODELS.build(cfg.model)
    assert (model.connector.in_channels, model.connector.out_channels) == (264, 528)
    assert model.student_stride == model.teacher_stride == 16
    assert model.mimic_cfg.sampler.num == 128 and model.mimic_cfg.sampler.pos_fraction == 0.5
    assert model.mimic_loss.loss_weight == 1.0
