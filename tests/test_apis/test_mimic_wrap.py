"""One-flag mimic: ``tools/train.py STUDENT --teacher CFG CKPT`` and ``wrap_with_teacher``."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmmimic.apis import choose_connector, extract_student, wrap_with_teacher
from mmmimic.testing.one_stage import mmdet_config_path
from mmmimic.testing import load_tiny_config, run_tool
from mmmimic.testing.distill import make_batch, make_teacher_ckpt

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')

TINY = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'mimic')
STUDENT_CFG = osp.join(TINY, 'rpn_r18-w8_scratch_tiny.py')
TEACHER_CFG = osp.join(TINY, 'rpn_r18-w16_tiny.py')
TRAIN = osp.join(ROOT, 'tools', 'train.py')


def _tiny_cfg(path, data_root, work_dir, **extra):
    cfg = load_tiny_config(path, data_root, work_dir, **extra)
    for key in ('val_evaluator', 'test_evaluator'):  # RPN configs score proposal recall
        cfg[key].pop('ann_file', None)
    return cfg


def _options(data_root, **extra):
    opts = {'train_dataloader.dataset.data_root': data_root,
            'val_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.data_root': data_root, **extra}
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def _train(*argv):
    run_tool(TRAIN, *argv)


@pytest.fixture(scope='module')
def random_teacher(tmp_path_factory):
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('random_teacher') / 'teacher.pth'))


@pytest.fixture(scope='module')
def trained_teacher(trained_tiny_teacher):
    return trained_tiny_teacher


def test_wrap_builds_a_complete_distiller_config(tiny_coco, random_teacher, tmp_path):
    student = _tiny_cfg(STUDENT_CFG, tiny_coco, str(tmp_path))
    cfg = wrap_with_teacher(student, TEACHER_CFG, random_teacher, mimic_weight=0.5)
    model = cfg.model
    assert model.type == 'FeatureMimicDistiller'
    assert model.student == student.model  # untouched student
    assert model.teacher == Config.fromfile(TEACHER_CFG).model  # embedded, not a path
    assert model.teacher_ckpt == osp.abspath(random_teacher)
    assert model.connector == dict(type='Conv1x1Connector')  # both maps stride 16
    assert model.mimic_loss == dict(type='ProposalSampledL2Loss', loss_weight=0.5)
    assert model.student_input_scale == 1.0 and model.student_feature == -1
    assert cfg.custom_hooks[-1] == dict(type='TeacherCheckHook', num_images=20)
    # the dumped config rebuilds the same distiller without the original files' help
    cfg.dump(str(tmp_path / 'dumped.py'))
    again = Config.fromfile(str(tmp_path / 'dumped.py'))
    distiller = MODELS.build(again.model)
    assert type(distiller.connector).__name__ == 'Conv1x1Connector'
    assert distiller.connector.conv.in_channels == 32 and distiller.connector.conv.out_channels \
        == 64


def test_cross_scale_chooses_the_deconv_connector(tiny_coco, random_teacher, tmp_path):
    student = _tiny_cfg(STUDENT_CFG, tiny_coco, str(tmp_path))
    cfg = wrap_with_teacher(student, TEACHER_CFG, random_teacher, student_scale=0.5,
                            teacher_check=False)
    assert cfg.model.connector == dict(type='Deconv2xConnector')
    assert cfg.model.student_input_scale == 0.5
    distiller = MODELS.build(cfg.model)
    inputs, samples = make_batch(num_imgs=2, h=96, w=128)
    losses = distiller.loss(inputs, samples)
    assert torch.isfinite(losses['loss_mimic']) and losses['loss_mimic'] > 0
    assert choose_connector(16, 16, 1.0) == 'Conv1x1Connector'
    with pytest.raises(ValueError, match=r'stride 16 on its input \(scale 0.25\), i.e. 64 in '
                       r"the teacher's pixels.*The student maps \(index: stride\) are 0: 16\. "
                       r'The teacher maps \(index: stride\) are 0: 16\. Mimic another pair of '
                       r'maps with --mimic-student-feature / --mimic-teacher-feature.*'
                       r'Deconv2xNeck'):
        wrap_with_teacher(student, TEACHER_CFG, random_teacher, student_scale=0.25,
                          teacher_check=False)


def test_mimicked_maps_are_chosen_from_the_command_line(tiny_coco, random_teacher, tmp_path):
    """--mimic-student-feature / --mimic-teacher-feature reach the distiller; an index out of
    range names the flag."""
    work_dir = str(tmp_path / 'work')
    opts = {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10**6, 'param_scheduler': '[]',
            'visualizer.name': 'vis_feature_flags'}
    _train(STUDENT_CFG, '--teacher', TEACHER_CFG, random_teacher, '--no-teacher-check',
           '--mimic-student-feature', '0', '--mimic-teacher-feature', '0', '--work-dir',
           work_dir, *_options(tiny_coco, **opts))
    dumped = Config.fromfile(osp.join(work_dir, osp.basename(STUDENT_CFG)))
    assert dumped.model.student_feature == 0 and dumped.model.teacher_feature == 0
    student = _tiny_cfg(STUDENT_CFG, tiny_coco, str(tmp_path))
    with pytest.raises(ValueError, match=r'--mimic-teacher-feature: teacher_feature=3 is out of '
                       r'range: the teacher \(RPN\) extract_feat returns 1 feature map'):
        wrap_with_teacher(student, TEACHER_CFG, random_teacher, teacher_feature=3,
                          teacher_check=False)


class _CtrlC(Exception):
    pass


def test_mmdet_style_student_resumes_bit_identically(tiny_coco, random_teacher, tmp_path):
    """A student config without RNGStateHook (mmdet's runtime configs have none): --teacher
    adds it, so an interrupted and resumed run equals a straight one, loss for loss."""
    from mmengine.hooks import Hook

    class Recorder(Hook):
        priority = 'VERY_LOW'

        def __init__(self, stop_after=None):
            self.losses, self.stop_after = {}, stop_after

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.losses[runner.iter + 1] = {k: v.item() for k, v in outputs.items()}
            if runner.iter + 1 == self.stop_after:
                raise _CtrlC  # after the checkpoint of this iteration was written

    def run(name, stop_after=None, resume_from=None):
        student = _tiny_cfg(STUDENT_CFG, tiny_coco, str(tmp_path / name), **{
            'train_cfg.max_iters': 4, 'train_cfg.val_interval': 10**6,
            'default_hooks.checkpoint.interval': 2, 'param_scheduler': [],
            'visualizer.name': f'vis_resume_{name}', 'experiment_name': name})
        student.custom_hooks = []  # as in mmdet's default_runtime.py
        student.randomness = dict(seed=0)
        cfg = wrap_with_teacher(student, TEACHER_CFG, random_teacher, teacher_check=False)
        assert [h['type'] for h in cfg.custom_hooks] == ['RNGStateHook']
        if resume_from:
            cfg.resume, cfg.load_from = True, resume_from
        runner = Runner.from_cfg(cfg)
        recorder = Recorder(stop_after)
        runner.register_hook(recorder, priority='LOWEST')
        try:
            runner.train()
        except _CtrlC:
            pass
        return recorder.losses

    straight = run('straight')
    assert sorted(straight) == [1, 2, 3, 4]
    assert sorted(run('cut', stop_after=3)) == [1, 2, 3]
    resumed = run('resumed', resume_from=str(tmp_path / 'cut' / 'iter_2.pth'))
    assert sorted(resumed) == [3, 4]
    for it in (3, 4):
        assert resumed[it] == straight[it], f'iteration {it}'


def test_flag_trains_resumes_and_exports(tiny_coco, random_teacher, tmp_path):
    work_dir = str(tmp_path / 'work')
    opts = {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 10**6,
            'default_hooks.checkpoint.interval': 1, 'param_scheduler': '[]',
            'visualizer.name': 'vis_flag'}
    _train(STUDENT_CFG, '--teacher', TEACHER_CFG, random_teacher, '--no-teacher-check',
           '--mimic-weight', '0.5', '--work-dir', work_dir, *_options(tiny_coco, **opts))
    dumped = osp.join(work_dir, osp.basename(STUDENT_CFG))
    cfg = Config.fromfile(dumped)
    assert cfg.model.type == 'FeatureMimicDistiller'
    assert cfg.model.mimic_loss.loss_weight == 0.5
    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=False)
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])
    assert any(k.startswith('connector.') for k in ckpt['state_dict'])

    # the dumped config alone continues the run
    _train(dumped, '--work-dir', work_dir, '--resume',
           *_options(tiny_coco, **{**opts, 'train_cfg.max_iters': 3, 'visualizer.name':
                                   'vis_flag_resume'}))
    resumed = torch.load(osp.join(work_dir, 'iter_3.pth'), weights_only=False)
    assert resumed['meta']['iter'] == 3

    cfg_path, ckpt_path = extract_student(
        dumped, osp.join(work_dir, 'iter_3.pth'), str(tmp_path / 'export'))
    student = MODELS.build(Config.fromfile(cfg_path).model)
    exported = torch.load(ckpt_path, weights_only=True)['state_dict']
    student.load_state_dict(exported, strict=True)
    assert torch.equal(exported['bbox_head.rpn_conv.weight'],
                       resumed['state_dict']['student.bbox_head.rpn_conv.weight'])


def test_bad_inputs_are_named_before_training(tiny_coco, random_teacher, tmp_path,
                                              monkeypatch):
    student = _tiny_cfg(STUDENT_CFG, tiny_coco, str(tmp_path))
    with pytest.raises(FileNotFoundError, match='teacher \\(--teacher\\) config not found: '
                       'nope.py'):
        wrap_with_teacher(student, 'nope.py', random_teacher)
    with pytest.raises(FileNotFoundError, match='teacher checkpoint \\(--teacher\\) not found: '
                       'missing.pth'):
        wrap_with_teacher(student, TEACHER_CFG, 'missing.pth')
    other_norm = Config.fromfile(TEACHER_CFG)
    other_norm.model.data_preprocessor.std = [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r'normalise images differently: std=\[1.0, 1.0, 1.0\] '
                       r'\(teacher\)'):
        wrap_with_teacher(student, other_norm, random_teacher)
    no_rpn = copy.deepcopy(student)
    no_rpn.model = dict(
        type='RetinaNet', data_preprocessor=student.model.data_preprocessor,
        backbone=student.model.backbone, neck=None,
        bbox_head=dict(
            type='RetinaHead', num_classes=1, in_channels=32, stacked_convs=1, feat_channels=32,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=1, ratios=[1.0], strides=[16]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                            target_stds=[1.] * 4),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss')))
    one_stage = wrap_with_teacher(no_rpn, TEACHER_CFG, random_teacher, teacher_check=False)
    assert one_stage.model.student.type == 'RetinaNet'  # one map: the single pair
    assert one_stage.model.student_feature == -1 and 'mimic_levels' not in one_stage.model
    headless = copy.deepcopy(student)
    headless.model = Config.fromfile(mmdet_config_path('detr/detr_r50_8xb2-150e_coco.py')).model
    headless.model.data_preprocessor = student.model.data_preprocessor
    with pytest.raises(TypeError, match='the student \\(DETR\\) has no RPN head and is not a '
                       'one-stage detector'):
        wrap_with_teacher(headless, TEACHER_CFG, random_teacher)
    no_val = copy.deepcopy(student)
    no_val.val_evaluator = None
    with pytest.raises(KeyError, match='no val_dataloader/val_evaluator.*--no-teacher-check'):
        wrap_with_teacher(no_val, TEACHER_CFG, random_teacher)
    with pytest.raises(ValueError, match="unknown mimic loss 'L1'"):
        wrap_with_teacher(student, TEACHER_CFG, random_teacher, mimic_loss='L1')
    with pytest.raises(ValueError, match='--student-scale / --mimic-weight / --mimic-\\*-feature '
                       'need --teacher'):
        _train(STUDENT_CFG, '--student-scale', '0.5', '--work-dir', str(tmp_path / 'w'))


def _check_run(tiny_coco, ckpt, work_dir, name):
    student = _tiny_cfg(STUDENT_CFG, tiny_coco, work_dir, **{
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10**6,
        'default_hooks.checkpoint.interval': 1, 'visualizer.name': f'vis_check_{name}'})
    cfg = wrap_with_teacher(student, TEACHER_CFG, ckpt, teacher_check_images=6)
    runner = Runner.from_cfg(cfg)
    hook = [h for h in runner.hooks if type(h).__name__ == 'TeacherCheckHook'][0]
    return runner, hook


def test_teacher_check_fires_on_a_random_teacher(tiny_coco, random_teacher, tmp_path):
    runner, hook = _check_run(tiny_coco, random_teacher, str(tmp_path), 'random')
    with pytest.raises(RuntimeError, match=f'this teacher looks untrained: teacher '
                       f'{random_teacher}: proposal/recall@10_iou50'):
        runner.train()
    assert hook.result['gain'] < hook.result['needed'] == 5.0
    assert runner.iter == 0 and not osp.exists(osp.join(str(tmp_path), 'iter_1.pth'))


def test_teacher_check_passes_on_a_trained_teacher(tiny_coco, trained_teacher, tmp_path):
    runner, hook = _check_run(tiny_coco, trained_teacher, str(tmp_path), 'trained')
    runner.train()
    assert hook.result['metric'] == 'proposal/recall@10_iou50'
    assert hook.result['teacher'] - hook.result['random'] >= 20.0
    assert runner.iter == 1


def test_failed_resume_keeps_the_runs_config_dump(tiny_coco, random_teacher, tmp_path):
    """--resume without the run's --teacher fails, and the distiller config the run dumped (the
    one to resume from) is left as it was."""
    work_dir = str(tmp_path / 'work')
    opts = {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10**6, 'param_scheduler': '[]',
            'visualizer.name': 'vis_keep_dump'}
    _train(STUDENT_CFG, '--teacher', TEACHER_CFG, random_teacher, '--no-teacher-check',
           '--work-dir', work_dir, *_options(tiny_coco, **opts))
    dump = osp.join(work_dir, osp.basename(STUDENT_CFG))
    before = open(dump, 'rb').read()
    assert b'FeatureMimicDistiller' in before
    with pytest.raises(RuntimeError, match='does not fit the model'):
        _train(STUDENT_CFG, '--work-dir', work_dir, '--resume',
               *_options(tiny_coco, **{**opts, 'visualizer.name': 'vis_keep_dump2'}))
    assert open(dump, 'rb').read() == before
