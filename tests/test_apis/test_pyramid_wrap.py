"""One-flag pyramid mimic: ``--teacher`` on an FPN student picks the level pairs by stride,
prints the pairing table, and ``--mimic-levels`` overrides them (mmdet's own FPN configs)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmdet
from mmdet.registry import MODELS
from mmmimic.apis import mimic_wrap, wrap_with_teacher
from mmmimic.apis.mimic_wrap import parse_mimic_levels
from mmmimic.testing import config_path, load_tiny_config, run_tool, tiny_coco_overrides
from mmmimic.testing.distill import make_batch

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
TRAIN = osp.join(ROOT, 'tools', 'train.py')
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
#: mmdet's faster-rcnn_r50_fpn (through mmdet::) with a tiny ResNet-18 trunk
SMOKE_FPN = config_path('smoke/faster-rcnn_r18-tiny_tiny-coco.py')


@pytest.fixture
def printed(monkeypatch):
    lines = []
    monkeypatch.setattr(mimic_wrap, 'print_log', lambda msg, logger=None: lines.append(msg))
    return lines


@pytest.fixture(scope='module')
def fake_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'teacher.pth'
    path.write_bytes(b'')  # wrap_with_teacher only checks that it exists
    return str(path)


def test_mmdet_fpn_teacher_pairs_every_level(tiny_coco, tmp_path, fake_ckpt, printed):
    """mmdet's R50-FPN Faster R-CNN teaches the R18-FPN student: P2..P6 pair with P2..P6."""
    student = load_tiny_config(SMOKE_FPN, tiny_coco, str(tmp_path))
    teacher = osp.join(MMDET_CONFIGS, 'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')
    cfg = wrap_with_teacher(student, teacher, fake_ckpt, teacher_check=False)
    assert cfg.model.mimic_levels == [dict(student=i, teacher=i) for i in range(5)]
    assert 'student_feature' not in cfg.model and cfg.model.connector == dict(
        type='Conv1x1Connector')
    table = printed[-1]
    assert 'student input scale 1' in table
    for stride in (4, 8, 16, 32, 64):
        assert f'| {stride} ' in table
    assert table.count('| 32         | ->') == 5 and table.count('| 256        |') == 5

    # at half input: a level shift, P6 of the student left out and said so
    half = wrap_with_teacher(student, teacher, fake_ckpt, student_scale=0.5,
                             teacher_check=False)
    assert half.model.mimic_levels == [dict(student=i, teacher=i + 1) for i in range(4)]
    assert 'student level 4 (stride 64, 32 channels) is not mimicked: the teacher has no ' \
        'level of stride 128' in printed[-1]

    # mmdet's RPN-FPN student (the same trunk) and an override of the pairs
    rpn = copy.deepcopy(student)
    rpn_model = Config.fromfile(osp.join(MMDET_CONFIGS, 'rpn', 'rpn_r50_fpn_1x_coco.py')).model
    rpn_model.backbone, rpn_model.neck = student.model.backbone, student.model.neck
    rpn_model.rpn_head.in_channels = rpn_model.rpn_head.feat_channels = 32
    rpn.model = rpn_model
    over = wrap_with_teacher(rpn, teacher, fake_ckpt, teacher_check=False,
                             mimic_levels='1:1,2:2')
    assert over.model.mimic_levels == [dict(student=1, teacher=1), dict(student=2, teacher=2)]
    assert printed[-1].count('->') == 2

    # single-level students and explicit feature indices keep today's single pair
    single = wrap_with_teacher(student, teacher, fake_ckpt, teacher_check=False,
                               student_feature=0, teacher_feature=0)
    assert 'mimic_levels' not in single.model and single.model.student_feature == 0


def test_pairing_refusals_name_levels_and_strides(tiny_coco, tmp_path, fake_ckpt):
    student = load_tiny_config(SMOKE_FPN, tiny_coco, str(tmp_path))
    teacher = osp.join(MMDET_CONFIGS, 'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')
    with pytest.raises(ValueError, match=r'mimic_levels\[0\]: student level 0 \(stride 4, 32 '
                       r'channels\) at input scale 1 with a x1 connector has stride 4 in the '
                       r"teacher's pixels, but teacher level 3 has stride 32 \(256 channels\)"):
        wrap_with_teacher(student, teacher, fake_ckpt, teacher_check=False,
                          mimic_levels='0:3')
    with pytest.raises(ValueError, match=r'mimic_levels\[0\]\.student=9 is out of range'):
        wrap_with_teacher(student, teacher, fake_ckpt, teacher_check=False,
                          mimic_levels=[dict(student=9, teacher=0)])
    with pytest.raises(ValueError, match='give one or the other'):
        wrap_with_teacher(student, teacher, fake_ckpt, teacher_check=False,
                          mimic_levels='auto', student_feature=0)
    with pytest.raises(ValueError, match=r"--mimic-levels: '0-1' is not STUDENT:TEACHER"):
        parse_mimic_levels('0:0,0-1')
    assert parse_mimic_levels('auto') == 'auto'


def test_fpn_student_trains_with_one_flag(tiny_coco, tmp_path):
    """tools/train.py FPN_STUDENT --teacher FPN_TEACHER CKPT --student-scale 0.5: the pairs in
    the dumped config, a pyramid of connectors in the checkpoint."""
    teacher = Config.fromfile(SMOKE_FPN)
    teacher.model.neck.out_channels = 48
    teacher.model.rpn_head.in_channels = teacher.model.rpn_head.feat_channels = 48
    teacher.model.roi_head.bbox_roi_extractor.out_channels = 48
    teacher.model.roi_head.bbox_head.in_channels = 48
    teacher_cfg = str(tmp_path / 'teacher.py')
    teacher.dump(teacher_cfg)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher.model).state_dict(), 'meta': {}}, ckpt)
    work_dir = str(tmp_path / 'work')
    opts = {**tiny_coco_overrides(tiny_coco), 'train_cfg.max_iters': 2,
            'train_cfg.val_interval': 10**6,
            'default_hooks.checkpoint.interval': 2, 'visualizer.name': 'vis_pyramid_flag'}
    run_tool(TRAIN, SMOKE_FPN, '--teacher', teacher_cfg, ckpt, '--no-teacher-check',
             '--student-scale', '0.5', '--work-dir', work_dir, '--cfg-options',
             *[f'{k}={v}' for k, v in opts.items()])
    dumped = Config.fromfile(osp.join(work_dir, osp.basename(SMOKE_FPN)))
    assert dumped.model.mimic_levels == [dict(student=i, teacher=i + 1) for i in range(4)]
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=False)['state_dict']
    assert {k.split('.')[1] for k in state if k.startswith('connectors.')} == {'0', '1', '2',
                                                                               '3'}
    model = MODELS.build(dumped.model)
    model.load_state_dict(state, strict=False)
    inputs, samples = make_batch(num_imgs=1, h=128, w=128)
    assert torch.isfinite(model.loss(inputs, samples)['loss_mimic'])


def test_teacher_check_scores_an_fpn_teacher_of_a_pyramid_run(tiny_coco, tmp_path):
    """The teacher check runs for a pyramid run's FPN teacher (COCO mAP on the val images): a
    random teacher is stopped before iteration 1."""
    from mmengine.runner import Runner
    teacher = Config.fromfile(SMOKE_FPN)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher.model).state_dict(), 'meta': {}}, ckpt)
    student = load_tiny_config(SMOKE_FPN, tiny_coco, str(tmp_path), **{
        'train_cfg.max_iters': 1, 'visualizer.name': 'vis_pyramid_check'})
    cfg = wrap_with_teacher(student, teacher, ckpt, teacher_check_images=6)
    assert len(cfg.model.mimic_levels) == 5
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match='this teacher looks untrained: teacher .*coco/bbox'):
        runner.train()
    assert runner.iter == 0


def test_teacher_config_may_be_mmdets_own(tiny_coco, tmp_path, fake_ckpt):
    """``--teacher mmdet::faster_rcnn/...`` reads the config mmdet ships, as a ``_base_`` of
    that form does; a package-scoped path that names no config is refused, naming it."""
    student = load_tiny_config(SMOKE_FPN, tiny_coco, str(tmp_path))
    by_path = wrap_with_teacher(student, osp.join(MMDET_CONFIGS, 'faster_rcnn',
                                                  'faster-rcnn_r50_fpn_1x_coco.py'),
                                fake_ckpt, teacher_check=False)
    scoped = wrap_with_teacher(student, 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                               fake_ckpt, teacher_check=False)
    assert scoped.model.teacher == by_path.model.teacher
    assert scoped.teacher_config == by_path.teacher_config
    with pytest.raises(FileNotFoundError, match=r'teacher \(--teacher\) config not found: '
                       r'mmdet::faster_rcnn/nope.py'):
        wrap_with_teacher(student, 'mmdet::faster_rcnn/nope.py', fake_ckpt, teacher_check=False)
