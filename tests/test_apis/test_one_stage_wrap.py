"""The one-flag path with a one-stage student (mmdet's own RetinaNet): ``tools/train.py STUDENT
--teacher CFG CKPT --student-scale 0.5`` pairs the pyramid a level up, trains, resumes bit for
bit, and extracts a plain RetinaNet that ``tools/test.py`` scores; the teacher check scores a
one-stage teacher (COCO mAP)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmdet.registry import MODELS
from mmmimic.apis import wrap_with_teacher
from mmmimic.testing import config_path, load_tiny_config, run_tool, tiny_coco_overrides

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
TOOLS = osp.join(ROOT, 'tools')
STUDENT = config_path('one_stage/retinanet_r18-tiny_tiny-coco.py')
TEACHER = config_path('one_stage/retinanet_r18-w48-tiny_tiny-coco.py')


@pytest.fixture(scope='module')
def retinanet_teacher_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('retinanet_teacher') / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(Config.fromfile(TEACHER).model).state_dict(),
                'meta': {}}, path)
    return path


def _train(tiny_coco, ckpt, work_dir, name, *extra):
    opts = {**tiny_coco_overrides(tiny_coco), 'train_cfg.max_iters': 4,
            'train_cfg.val_interval': 10**6, 'default_hooks.checkpoint.interval': 2,
            'visualizer.name': f'vis_one_stage_{name}'}
    run_tool(osp.join(TOOLS, 'train.py'), STUDENT, '--teacher', TEACHER, ckpt,
             '--no-teacher-check', '--student-scale', '0.5', '--work-dir', work_dir, *extra,
             '--cfg-options', *[f'{k}={v}' for k, v in opts.items()])


def test_retinanet_trains_resumes_exactly_and_extracts(tiny_coco, retinanet_teacher_ckpt,
                                                       tmp_path):
    full, resumed = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    _train(tiny_coco, retinanet_teacher_ckpt, full, 'full')
    dumped = Config.fromfile(osp.join(full, osp.basename(STUDENT)))
    assert dumped.model.student.type == 'RetinaNet'
    assert dumped.model.mimic_levels == [dict(student=i, teacher=i + 1) for i in range(4)]
    assert dumped.model.student_input_scale == 0.5
    # padded to the backbone's coarsest stride (32) / 0.5: the half batch keeps whole cells
    assert dumped.model.student.data_preprocessor.pad_size_divisor == 64
    state = _load_checkpoint(osp.join(full, 'iter_4.pth'), map_location='cpu')
    assert {k.split('.')[1] for k in state['state_dict'] if k.startswith('connectors.')} == \
        {'0', '1', '2', '3'}
    assert not any(k.startswith('teacher.') for k in state['state_dict'])
    start = _load_checkpoint(osp.join(full, 'iter_2.pth'), map_location='cpu')
    key = 'student.bbox_head.retina_cls.weight'
    assert not torch.equal(start['state_dict'][key], state['state_dict'][key])

    # interrupted after iteration 2 and resumed: the same weights and optimizer, bit for bit
    _train(tiny_coco, retinanet_teacher_ckpt, resumed, 'resumed', '--resume',
           osp.join(full, 'iter_2.pth'))
    again = _load_checkpoint(osp.join(resumed, 'iter_4.pth'), map_location='cpu')
    assert again['state_dict'].keys() == state['state_dict'].keys()
    for k in state['state_dict']:
        assert torch.equal(again['state_dict'][k], state['state_dict'][k]), k
    for k, v in state['optimizer']['state'].items():
        assert torch.equal(again['optimizer']['state'][k]['momentum_buffer'],
                           v['momentum_buffer'])

    # a clean, plain RetinaNet student, scored by tools/test.py at its half input
    out = str(tmp_path / 'student')
    run_tool(osp.join(TOOLS, 'model_converters', 'extract_student.py'),
             osp.join(full, osp.basename(STUDENT)), osp.join(full, 'iter_4.pth'), out,
             '--name', 'retinanet_student')
    plain = Config.fromfile(osp.join(out, 'retinanet_student.py'))
    assert plain.model.type == 'RetinaNet'
    weights = _load_checkpoint(osp.join(out, 'retinanet_student.pth'), map_location='cpu')
    assert set(weights['state_dict']) == {k[len('student.'):] for k in state['state_dict']
                                          if k.startswith('student.')}
    run_tool(osp.join(TOOLS, 'test.py'), osp.join(out, 'retinanet_student.py'),
             osp.join(out, 'retinanet_student.pth'), '--work-dir', str(tmp_path / 'test'),
             '--cfg-options', *[f'{k}={v}' for k, v in tiny_coco_overrides(tiny_coco).items()])


def test_teacher_check_scores_a_one_stage_teacher(tiny_coco, retinanet_teacher_ckpt, tmp_path):
    """The check scores the RetinaNet teacher with the val evaluator (COCO bbox mAP): a random
    one is stopped before iteration 1."""
    student = load_tiny_config(STUDENT, tiny_coco, str(tmp_path), **{
        'train_cfg.max_iters': 1, 'visualizer.name': 'vis_one_stage_check'})
    cfg = wrap_with_teacher(student, TEACHER, retinanet_teacher_ckpt, teacher_check_images=6)
    assert len(cfg.model.mimic_levels) == 5
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match='this teacher looks untrained: teacher .*coco/bbox'):
        runner.train()
    assert runner.iter == 0
