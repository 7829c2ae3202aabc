"""mmmimic.benchmark: the vtest benchmark's model list and the run config shared by
tools/mimic_demo.py and benchmarks/vtest_mimic_sweep.py."""
import dataclasses
import os.path as osp

import pytest

from mmmimic.benchmark import (MODELS, BenchmarkModel, speed_config, speed_configs,
                               vtest_train_config)


def test_models_and_derived_speed_configs():
    assert [m.name for m in MODELS] == ['teacher', 'mimic-1-2', 'scratch-1-2', 'mimic-1-4',
                                        'scratch-1-4']
    assert all(isinstance(m, BenchmarkModel) for m in MODELS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS[0].name = 'x'
    # a mimic student is timed as its scratch twin (the table tools/mimic_demo.py used to spell out)
    assert {m.name: speed_config(m) for m in MODELS} == {
        'teacher': 'configs/vtest/rpn_inception_vtest.py',
        'mimic-1-2': 'configs/vtest/rpn_inception-1-2_vtest.py',
        'scratch-1-2': 'configs/vtest/rpn_inception-1-2_vtest.py',
        'mimic-1-4': 'configs/vtest/rpn_inception-1-4_vtest.py',
        'scratch-1-4': 'configs/vtest/rpn_inception-1-4_vtest.py',
    }
    assert speed_configs() == ['configs/vtest/rpn_inception_vtest.py',
                               'configs/vtest/rpn_inception-1-2_vtest.py',
                               'configs/vtest/rpn_inception-1-4_vtest.py']
    with pytest.raises(ValueError, match='one scratch model of width 0.3'):
        speed_config(BenchmarkModel('mimic-x', 'c.py', 'x', 0.3, True))


def test_vtest_train_config(tmp_path):
    work_dir = str(tmp_path / 'seed3' / 'mimic-1-2')
    cfg = vtest_train_config(MODELS[1].config, 'data/vtest', 3, work_dir, iters=40, workers=0,
                             teacher_ckpt='teacher.pth')
    assert cfg.train_dataloader.dataset.data_root == osp.abspath('data/vtest') + '/'
    assert cfg.train_cfg.max_iters == 40 and cfg.train_cfg.val_interval == 41
    assert cfg.val_dataloader is None and cfg.val_evaluator is None
    assert cfg.param_scheduler[0].end == 4 and cfg.param_scheduler[1].milestones == [30]
    assert cfg.default_hooks.checkpoint.interval == 20 and cfg.randomness == dict(seed=3)
    assert cfg.experiment_name == 'seed3_mimic-1-2' and cfg.model.teacher_ckpt == 'teacher.pth'
    assert cfg.test_dataloader.num_workers == 0
    assert not cfg.test_dataloader.persistent_workers
    big = vtest_train_config(MODELS[0].config, 'data/vtest', 0, work_dir, iters=3000)
    assert big.param_scheduler[0].end == 100 and big.param_scheduler[1].milestones == [2250]
