"""projects.vtest_mimic.vtest_mimic.models and .options: the vtest study's models, blocks,
presets and the run config shared by the run and the sweeps."""
import dataclasses
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from projects.vtest_mimic.vtest_mimic.models import (BY_NAME, COMPARISONS, MODELS, REPO_ROOT,
                                                     BenchmarkModel, models_of, speed_config,
                                                     speed_configs, student_init_state,
                                                     vtest_train_config)
from projects.vtest_mimic.vtest_mimic.options import load_preset

PRESETS = {name: load_preset(name) for name in ('quick', 'default')}


def test_models_blocks_and_dependencies():
    assert all(isinstance(m, BenchmarkModel) for m in MODELS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS[0].name = 'x'
    for m in MODELS:
        assert osp.isfile(osp.join(REPO_ROOT, m.config)), m.config
        for dep in (m.teacher, m.init_from):
            assert dep is None or dep in BY_NAME
    quick = [m.name for m in models_of(PRESETS['quick']['blocks'])]
    assert quick == ['teacher', 'xs-mimic-1-2', 'xs-scratch-1-2', 'xs-nodeconv-1-2',
                     'xs-mimic-1-4', 'xs-scratch-1-4', 'xs-nodeconv-1-4']
    full = models_of(PRESETS['default']['blocks'])
    assert {m.block for m in full} == {'teacher', 'cross-scale', 'same-input', 'stage2',
                                       'mmdet'}
    assert 'teacher-rfcn' in [m.name for m in full] and len(PRESETS['default']['seeds']) == 5
    with pytest.raises(ValueError, match='s2-mimic-1-2 needs xs-mimic-1-2'):
        models_of(('teacher', 'stage2'))
    for _, _, mimic, scratch, other in COMPARISONS:
        assert BY_NAME[mimic].width == BY_NAME[scratch].width


def test_speed_configs_time_each_mimic_student_as_its_scratch_twin():
    assert speed_config(BY_NAME['xs-mimic-1-2']) == BY_NAME['xs-scratch-1-2'].config
    assert speed_config(BY_NAME['mimic-1-4']) == BY_NAME['scratch-1-4'].config
    assert speed_config(BY_NAME['s2-twostage-1-2']) == BY_NAME['s2-mimic-1-2'].config
    configs = speed_configs(models_of(PRESETS['quick']['blocks']))
    assert configs[0] == BY_NAME['teacher'].config and len(configs) == 5
    for c in configs:  # every timed config is a plain detector
        assert Config.fromfile(osp.join(REPO_ROOT, c)).model.type != 'FeatureMimicDistiller'


def test_vtest_train_config(tmp_path):
    work_dir = str(tmp_path / 'seed3' / 'xs-mimic-1-2')
    cfg = vtest_train_config(BY_NAME['xs-mimic-1-2'].config, 'data/vtest', 3, work_dir,
                             iters=40, workers=0, teacher_ckpt='teacher.pth',
                             init_ckpt='init.pth', mimic_weight=0.5,
                             teacher_cache=dict(dir='cache', dtype='float16'))
    assert cfg.train_dataloader.dataset.data_root == osp.abspath('data/vtest') + '/'
    assert cfg.train_cfg.max_iters == 40 and cfg.train_cfg.val_interval == 41
    assert cfg.val_dataloader is None and cfg.val_evaluator is None
    assert cfg.param_scheduler[0].end == 4 and cfg.param_scheduler[1].milestones == [30]
    assert cfg.default_hooks.checkpoint.interval == 20 and cfg.randomness == dict(seed=3)
    assert cfg.experiment_name == 'seed3_xs-mimic-1-2' and cfg.model.teacher_ckpt == 'teacher.pth'
    assert cfg.load_from == 'init.pth' and cfg.model.mimic_loss.loss_weight == 0.5
    assert cfg.model.student_input_scale == 0.5
    # the cache is told the training pipeline (it refuses to serve any other)
    assert cfg.model.teacher_cache.pipeline == cfg.train_dataloader.dataset.pipeline
    assert cfg.train_dataloader.dataset.pipeline[3].type == 'StrideAlignedRandomCrop'
    assert cfg.test_dataloader.num_workers == 0
    assert not cfg.test_dataloader.persistent_workers
    # the teacher: validated, best checkpoint by validation MR-2
    teacher = vtest_train_config(BY_NAME['teacher'].config, 'data/vtest', 0, work_dir,
                                 iters=3000, val_interval=250)
    assert teacher.param_scheduler[0].end == 100
    assert teacher.param_scheduler[1].milestones == [2250]
    assert teacher.train_cfg.val_interval == 250
    assert teacher.val_dataloader.dataset.ann_file == 'vtest_val.txt'
    assert teacher.default_hooks.checkpoint.save_best == 'caltech/Reasonable_MR-2'
    assert teacher.default_hooks.checkpoint.rule == 'less'
    # stage 2: every MimicStudentInit reads the stage-1 checkpoint
    s2 = vtest_train_config(BY_NAME['s2-twostage-1-2'].config, 'data/vtest', 0, work_dir, 10,
                            teacher_ckpt='t.pth', stage1_ckpt='stage1.pth')
    inits = [part.init_cfg.checkpoint for part in s2.model.student.values()
             if hasattr(part, 'get') and part.get('init_cfg')]
    assert inits == ['stage1.pth'] * 3  # backbone, deconv neck, RPN head
    with pytest.raises(ValueError, match='no MimicStudentInit'):
        vtest_train_config(BY_NAME['teacher'].config, 'data/vtest', 0, work_dir, 10,
                           stage1_ckpt='stage1.pth')


def test_student_init_state_is_seeded():
    cfg = Config.fromfile(osp.join(REPO_ROOT, BY_NAME['xs-scratch-1-4'].config)).model
    a, b, c = (student_init_state(cfg, s) for s in (0, 0, 1))
    assert a.keys() == b.keys() and any(k.startswith('neck.') for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a['backbone.stem.0.conv.weight'], c['backbone.stem.0.conv.weight'])


def test_presets_are_config_files_with_the_values_of_the_former_dict():
    """configs/presets/{quick,default}.py hold exactly what the former PRESETS dict held;
    --cfg-options-style keys override them and unknown keys are refused."""
    assert load_preset('quick') == dict(
        seeds=(0, 1, 2), iters=600, teacher='full', teacher_iters=1500, teacher_val_interval=250,
        stage2_iters=0, mimic_weight=10.0, mimic_weights={}, blocks=('teacher', 'cross-scale'),
        mmdet_iters=1000, mmdet_teacher_iters=1500)
    assert load_preset('default') == dict(
        seeds=(0, 1, 2, 3, 4), iters=600, teacher='full', teacher_iters=1500,
        teacher_val_interval=250, stage2_iters=400, mimic_weight=10.0,
        mimic_weights={'mimic-1-2': 0.1, 'mimic-1-4': 0.1, 'mm-mimic-frcnn': 1.0,
                       'mm-mimic-retina': 1.0},
        blocks=('teacher', 'cross-scale', 'same-input', 'stage2', 'mmdet'), mmdet_iters=1000,
        mmdet_teacher_iters=1500)
    over = load_preset('quick', {'iters': 300, 'mimic_weights.mimic-1-4': 1})
    assert over['iters'] == 300 and over['mimic_weights'] == {'mimic-1-4': 1}
    with pytest.raises(KeyError, match='not a preset key'):
        load_preset('default', {'itres': 300})
