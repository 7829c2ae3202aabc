"""The vtest study's mmdet block: mmdet's own Faster R-CNN FPN and RetinaNet configs through
``mmdet::``, a teacher at full input, half-input students with pyramid mimic and from scratch;
its validation sweep (level rule, lambda1) and the block run end to end on a 32-frame synthetic
walker video, 1-2 iterations per model."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from projects.vtest_mimic.vtest_mimic.common import MR2
from projects.vtest_mimic.vtest_mimic.job import MainJob
from projects.vtest_mimic.vtest_mimic.models import (BY_NAME, COMPARISONS, REPO_ROOT,
                                                     models_of, speed_config)
from projects.vtest_mimic.vtest_mimic.options import parse_args
from projects.vtest_mimic.vtest_mimic.report import precondition

MMDET = ('mm-teacher', 'mm-mimic-frcnn', 'mm-scratch-frcnn', 'mm-mimic-retina',
         'mm-scratch-retina')


def test_block_models_and_options(tmp_path):
    assert [m.name for m in models_of(('mmdet', ))] == list(MMDET)
    # the block alone does not train the Inception RPN teacher
    args = parse_args(['--out', str(tmp_path), '--blocks', 'mmdet'])
    assert args.blocks == ('mmdet', )
    job = MainJob(args)
    assert job.names == list(MMDET)
    teacher = BY_NAME['mm-teacher']
    assert job.selects_on_val(teacher) and not job.is_rpn_teacher(teacher)
    assert job.iters_of(teacher) == args.mmdet_teacher_iters
    assert job.iters_of(BY_NAME['mm-mimic-retina']) == args.mmdet_iters
    assert job.work_dir(teacher, 0) == osp.join(str(tmp_path), 'shared', 'mm-teacher')
    assert not job.use_cache  # FPN two-stage students need the live teacher
    cfg = job.config_of(teacher, 0)
    assert cfg.train_cfg.val_interval == args.teacher_val_interval
    assert cfg.default_hooks.checkpoint.save_best == MR2
    job.ckpts['mm-teacher@0'] = 'mm-teacher.pth'
    mimic = job.config_of(BY_NAME['mm-mimic-frcnn'], 0, for_training=False)
    assert mimic.model.teacher_ckpt == 'mm-teacher.pth'
    assert mimic.model.mimic_loss.loss_weight == job.weight_of(BY_NAME['mm-mimic-frcnn'])
    # with another block the Inception teacher comes back
    assert parse_args(['--blocks', 'cross-scale', 'mmdet']).blocks == \
        ('teacher', 'cross-scale', 'mmdet')
    assert ('mmdet', 'retina', 'mm-mimic-retina', 'mm-scratch-retina', None) in COMPARISONS


def test_configs_are_mmdets_own_from_scratch(tmp_path):
    """mmdet's model configs through ``mmdet::``; nothing pretrained, nothing frozen; the
    students at half input; the mimic students' pairs shift one level (measured on the
    networks)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import mmmimic  # noqa: F401
    init_default_scope('mmdet')
    texts = {n: open(osp.join(REPO_ROOT, BY_NAME[n].config)).read() for n in MMDET}
    assert 'mmdet::_base_/models/faster-rcnn_r50_fpn.py' in texts['mm-teacher']
    assert 'mmdet::_base_/models/retinanet_r50_fpn.py' in texts['mm-scratch-retina']
    teacher_cfg = Config.fromfile(osp.join(REPO_ROOT, BY_NAME['mm-teacher'].config))
    for name in MMDET:
        cfg = Config.fromfile(osp.join(REPO_ROOT, speed_config(BY_NAME[name])))
        bb = cfg.model.backbone
        assert (bb.depth, bb.init_cfg, bb.frozen_stages, bb.norm_eval) == (18, None, -1, False)
        assert cfg.model.backbone.base_channels == (32 if name == 'mm-teacher' else 16)
        dp = cfg.model.data_preprocessor
        assert dp.get('input_scale', 1.0) == (1.0 if name == 'mm-teacher' else 0.5)
    teacher = MODELS.build(teacher_cfg.model)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta={}), ckpt)
    expected = {'mm-mimic-frcnn': [(0, 1), (1, 2), (2, 3), (3, 4)],
                'mm-mimic-retina': [(0, 2), (1, 3), (2, 4)]}
    for name, pairs in expected.items():
        cfg = Config.fromfile(osp.join(REPO_ROOT, BY_NAME[name].config))
        cfg.model.teacher_ckpt = ckpt
        model = MODELS.build(cfg.model)
        assert [(p['student'], p['teacher']) for p in model.mimic_pairs] == pairs, name
        assert model.student_input_scale == 0.5 and model.level_rule == cfg.model.level_rule


def test_precondition_of_the_block_against_its_own_teacher():
    class Job:
        class args:
            seeds = [0, 1]

    val = {'mm-teacher': {0: {MR2: 30.0}},
           'mm-scratch-frcnn': {0: {MR2: 50.0}, 1: {MR2: 52.0}},
           'mm-scratch-retina': {0: {MR2: 33.0}, 1: {MR2: 34.0}}}
    pre = precondition(Job, val)
    assert pre['teacher_val_mr2'] is None and pre['met'] is None  # no Inception block
    assert pre['mmdet']['margins'] == {'mm-scratch-frcnn': 21.0, 'mm-scratch-retina': 3.5}
    assert pre['mmdet']['met'] is False  # the RetinaNet is within 5 points
    val['mm-scratch-retina'] = {0: {MR2: 40.0}, 1: {MR2: 40.0}}
    assert precondition(Job, val)['mmdet']['met'] is True
    val['teacher'] = {0: {MR2: 20.0}}
    val['xs-scratch-1-2'] = {0: {MR2: 60.0}, 1: {MR2: 60.0}}
    pre = precondition(Job, val)
    assert pre['met'] is True and set(pre['students_val_mr2']) == {'xs-scratch-1-2'}


@pytest.mark.timeout(1500)
def test_sweep_then_block_run_end_to_end(repo_root, tmp_path):
    from projects.vtest_mimic.vtest_mimic.synthetic_video import write_synthetic_video
    video = str(tmp_path / 'walk.avi')
    write_synthetic_video(video, num_frames=32, size=(320, 240))
    out = str(tmp_path / 'demo')
    common = ['--video', video, '--out', out, '--data-dir', osp.join(out, 'data'),
              '--seeds', '0', '1', '--mmdet-iters', '1', '--mmdet-teacher-iters', '2',
              '--teacher-val-interval', '1', '--gap', '2', '--workers', '0']
    env = dict(os.environ, MMMIMIC_CACHE=str(tmp_path / 'cache'))
    commit = str(tmp_path / 'committed')
    proc = subprocess.run(
        [sys.executable, '-m', 'projects.vtest_mimic.tools.mmdet_sweep', '--student', 'retina',
         '--rules', 'scale', '0', '--weights', '1', '10', '--commit-to', commit, *common],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    sweep = json.load(open(osp.join(commit, 'sweep_retina.json')))
    # coordinate-wise: 2 rules at lambda1 1, then lambda1 10 at the chosen rule
    means = sweep['means']
    rule = min(('scale', 'pair0'), key=lambda r: means[f'mm-mimic-retina_{r}_w1'])
    assert set(sweep['results']) == {'scratch', 'mm-mimic-retina_scale_w1',
                                     'mm-mimic-retina_pair0_w1', f'mm-mimic-retina_{rule}_w10'}
    best = min(sweep['means'], key=sweep['means'].get)
    assert sweep['chosen']['variant'] == best
    for per_seed in sweep['results'].values():
        assert sorted(per_seed) == ['0', '1'] and all(0 <= v[MR2] <= 100
                                                      for v in per_seed.values())
    assert 'Test split not read' in open(osp.join(commit, 'sweep_retina.md')).read()
    # a sweep variant's config carries its rule; the variant at the run's own settings (the
    # config's finest pair, the preset's lambda1 1) is the run's own mimic run
    stage = Config.fromfile(osp.join(out, 'mmdet_sweep', 'seed1', 'mm-mimic-retina_scale_w1',
                                     'stage_config.py'))
    assert stage.model.level_rule == 'scale' and stage.model.mimic_loss.loss_weight == 1.0
    assert not osp.exists(osp.join(out, 'mmdet_sweep', 'seed1', 'mm-mimic-retina_pair0_w1'))
    stage = Config.fromfile(osp.join(out, 'seed1', 'mm-mimic-retina', 'stage_config.py'))
    assert stage.model.level_rule == 0 and stage.model.mimic_loss.loss_weight == 1.0

    proc = subprocess.run(
        [sys.executable, '-m', 'projects.vtest_mimic.tools.run', '--blocks', 'mmdet',
         '--speed-runs', '1', '--speed-shape', '96x128', '--n-boot', '20', '--boot-block', '2',
         *common], cwd=repo_root, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    # the sweep's teacher and scratch students are the run's own
    assert 'mm-teacher (seed 0): reusing' in proc.stdout
    assert 'mm-scratch-retina (seed 1): reusing' in proc.stdout
    # the sweep's variant at the run's own settings (finest pair, the preset's lambda1 1) is the
    # run's own mimic run
    assert 'mm-mimic-retina (seed 1): reusing' in proc.stdout
    assert 'mm-mimic-frcnn (seed 1): reusing' not in proc.stdout
    assert 'train teacher ' not in proc.stdout  # no Inception teacher
    summary = json.load(open(osp.join(out, 'results.json')))
    rows = {r['name']: r for r in summary['rows']}
    assert set(rows) == set(MMDET)
    assert rows['mm-mimic-frcnn']['speedup_over'] == 'mm-teacher'
    assert rows['mm-mimic-retina']['params_m'] == rows['mm-scratch-retina']['params_m'] < \
        rows['mm-teacher']['params_m']
    pre = summary['precondition']['mmdet']
    assert set(pre['students_val_mr2']) == {'mm-scratch-frcnn', 'mm-scratch-retina'}
    pairs = {(r['a'], r['b']) for r in summary['intervals']}
    assert pairs == {('mm-mimic-frcnn', 'mm-scratch-frcnn'),
                     ('mm-mimic-retina', 'mm-scratch-retina')}
    for r in summary['intervals']:
        assert r['MR-2']['seeds']['n'] == 2 and 'gap_closed' in r
    report = open(osp.join(out, 'report.md')).read()
    for text in ('mmdet block, validation MR-2: its teacher', 'mmdet block: pyramid mimic',
                 'RetinaNet R-18-FPN (w16), half input, pyramid mimic', 'Paired differences'):
        assert text in report, text
    # paired initial weights: the mimic student starts where its scratch twin starts
    inits = {n: torch.load(osp.join(out, 'seed1', 'init', f'{n}.pth'))['state_dict']
             for n in ('mm-mimic-frcnn', 'mm-scratch-frcnn')}
    key = 'backbone.conv1.weight'
    assert torch.equal(inits['mm-mimic-frcnn']['student.' + key], inits['mm-scratch-frcnn'][key])
    assert 'reproduces CaltechMRMetric for every model' in proc.stdout


def test_two_processes_never_train_one_model_at_once(tmp_path):
    """A second process asking for a model another process is training waits for it (the lock
    beside the work dir), then reuses its run."""
    import fcntl
    import threading
    import time

    job = MainJob(parse_args(['--out', str(tmp_path), '--blocks', 'mmdet']))
    m = BY_NAME['mm-scratch-retina']
    calls = []
    job._train = lambda m, seed, work_dir: calls.append((time.time(), work_dir)) or 'ckpt'
    lock_path = job.work_dir(m, 0) + '.lock'
    os.makedirs(osp.dirname(lock_path), exist_ok=True)
    with open(lock_path, 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # "another process" is training it
        worker = threading.Thread(target=job.train, args=(m, 0))
        worker.start()
        time.sleep(0.5)
        assert not calls and worker.is_alive()  # waiting
        released = time.time()
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(10)
    assert len(calls) == 1 and calls[0][0] >= released
    assert calls[0][1] == job.work_dir(m, 0)


def test_the_block_teacher_keeps_the_later_of_equal_checkpoints(tmp_path):
    """Validation ties (the block's teacher sits at 0.0 MR-2 for most of its schedule) keep the
    later checkpoint; mmengine's own hook keeps the earlier. Only the block's teacher uses it:
    the Inception teacher's stamps stay as they were."""
    from mmengine.hooks import CheckpointHook

    from projects.vtest_mimic.vtest_mimic.hooks import LaterBestCheckpointHook
    assert LaterBestCheckpointHook.rule_map['less'](0.0, 0.0)
    assert not CheckpointHook.rule_map['less'](0.0, 0.0)
    assert not LaterBestCheckpointHook.rule_map['less'](0.1, 0.0)
    job = MainJob(parse_args(['--out', str(tmp_path), '--blocks', 'cross-scale', 'mmdet']))
    assert job.config_of(BY_NAME['mm-teacher'], 0).default_hooks.checkpoint.type == \
        'LaterBestCheckpointHook'
    assert job.config_of(BY_NAME['teacher'], 0).default_hooks.checkpoint.type == \
        'CheckpointHook'
