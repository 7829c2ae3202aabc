"""TeacherCheckHook: a chance baseline without pretrained init, the same images (and scores) in
one process and in two, random streams left as found, labelled output, the verdict reused on
resume, and a pointer to ProposalRecallMetric when mmdet's proposal_fast metric breaks."""
import json
import logging
import math
import os
import os.path as osp
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmmimic.engine.hooks.teacher_check_hook import metric_value
from mmmimic.testing import make_tiny_coco
from mmmimic.testing.teacher_check import check_cfg, teacher_cfg, the_hook

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'teacher_check_ddp_worker.py')
# The tiny teacher after TEACHER_ITERS iterations and the chance baseline (seed 0) on the 6
# validation images of tests/conftest.py's tiny_coco: proposal recall@10 at IoU 0.5, in %.
TEACHER_RECALL, CHANCE_RECALL = 53.333, 13.333


pytestmark = pytest.mark.usefixtures('single_torch_thread')


@pytest.fixture(scope='module')
def trained_teacher(trained_tiny_teacher):
    return trained_tiny_teacher


class LogLines(logging.Handler):
    """Every line the current MMLogger emits (after the logger's filters)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.extend(record.getMessage().split('\n'))

    def __enter__(self):
        self.logger = MMLogger.get_current_instance()
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def _checked(cfg):
    runner = Runner.from_cfg(cfg)
    hook = the_hook(runner)
    with LogLines() as log:
        hook.before_train(runner)
    return hook, log.lines


def test_strip_init_cfg_removes_every_pretrained_init():
    from mmmimic.engine.hooks.teacher_check_hook import strip_init_cfg
    cfg = ConfigDict(
        type='X', init_cfg=dict(type='Pretrained', checkpoint='a.pth'),
        backbone=dict(type='ResNet', pretrained='torchvision://resnet50',
                      init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        heads=[dict(type='H', init_cfg=[dict(type='Normal', layer='Conv2d')], num=2)])
    out = strip_init_cfg(cfg)
    assert out == dict(type='X', backbone=dict(type='ResNet'), heads=[dict(type='H', num=2)])
    assert isinstance(out, ConfigDict)
    assert cfg.backbone.init_cfg.checkpoint == 'torchvision://resnet50'  # a copy


def test_chance_baseline_has_no_pretrained_init(tiny_coco, trained_teacher, tmp_path):
    """mmdet's usual backbone init (torchvision://, which this project cannot even load), the
    deprecated ``pretrained=`` key, and a model-level Pretrained init that would make the
    'random' network the teacher itself: the baseline scores chance level in every case."""
    variants = dict(
        none=teacher_cfg(backbone_init_cfg=None),
        torchvision=teacher_cfg(),
        pretrained_key=teacher_cfg(backbone_init_cfg=None),
        teacher_weights=teacher_cfg(model_init_cfg=dict(type='Pretrained',
                                                        checkpoint=trained_teacher)))
    variants['pretrained_key'].backbone.pretrained = 'torchvision://resnet18'
    results = {}
    for name, teacher in variants.items():
        cfg = check_cfg(str(tmp_path / name), tiny_coco, trained_teacher, teacher=teacher)
        hook, lines = _checked(cfg)
        results[name] = hook.result
    for name, res in results.items():
        assert res['metric'] == 'proposal/recall@10_iou50', name
        assert res['teacher'] == pytest.approx(TEACHER_RECALL, abs=1e-3), name
        assert res['random'] == pytest.approx(CHANCE_RECALL, abs=1e-3), name
        assert res['gain'] == pytest.approx(TEACHER_RECALL - CHANCE_RECALL, abs=1e-3), name
        assert res['num_images'] == 6 and res['needed'] == 5.0


def _same_state(a, b):
    (ta, na, pa), (tb, nb, pb) = a, b
    return torch.equal(ta, tb) and pa == pb and na[0] == nb[0] and \
        np.array_equal(na[1], nb[1]) and na[2:] == nb[2:]


def _rng_state():
    return torch.get_rng_state().clone(), np.random.get_state(), random.getstate()


def test_check_leaves_every_random_stream_as_found(tiny_coco, trained_teacher, tmp_path):
    runner = Runner.from_cfg(check_cfg(str(tmp_path), tiny_coco, trained_teacher))
    hook = the_hook(runner)
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    before = _rng_state()
    cuda_before = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    hook.before_train(runner)
    assert hook.result['teacher'] == pytest.approx(TEACHER_RECALL, abs=1e-3)  # it did run
    assert _same_state(before, _rng_state())
    if cuda_before is not None:
        assert all(torch.equal(a, b) for a, b in zip(cuda_before, torch.cuda.get_rng_state_all()))
    # ... so the next draws are the ones the run would have seen without the check
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    hook.before_train(runner)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and \
        expected[2] == got[2]


def test_training_is_the_same_with_and_without_the_check(tiny_coco, trained_teacher, tmp_path):
    """The check draws no number the training would have drawn: the same losses."""
    losses = []
    for name in ('with', 'without'):
        cfg = check_cfg(str(tmp_path / name), tiny_coco, trained_teacher, max_iters=2)
        if name == 'without':
            cfg.custom_hooks = []
        runner = Runner.from_cfg(cfg)
        runner.train()
        losses.append({k: list(runner.message_hub.get_scalar(f'train/{k}').data[0])
                       for k in ('loss', 'loss_mimic', 'loss_rpn_cls')})
    assert len(losses[0]['loss']) == 2 and losses[0]['loss'][0] > 0
    assert losses[0] == losses[1]


def test_two_processes_score_the_same_images_as_one(tiny_coco, trained_teacher, tmp_path):
    """5 of the 6 val images at batch size 1: each of 2 ranks scores 3 of its (interleaved)
    samples, the metric gathers 6 and keeps the first 5, the same 5 one process scores."""
    runner = Runner.from_cfg(check_cfg(str(tmp_path / 'one'), tiny_coco, trained_teacher,
                                       num_images=5))
    runner.train()
    one = the_hook(runner).result
    # 7 and 2 of the 13 gts of the first 5 images are covered by a top-10 proposal
    assert one['teacher'] == pytest.approx(100 * 7 / 13) and \
        one['random'] == pytest.approx(100 * 2 / 13)

    work_dir = tmp_path / 'two'
    work_dir.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    # cwd: mmengine's cpu result collection makes a '.dist_test' folder in the working dir
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
         WORKER, '--work-dir', str(work_dir), '--data-root', tiny_coco,
         '--teacher-ckpt', trained_teacher, '--num-images', '5'],
        env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [json.loads((work_dir / f'teacher_check_rank{r}.json').read_text())
             for r in range(2)]
    assert [r['world_size'] for r in ranks] == [2, 2] and [r['iters'] for r in ranks] == [1, 1]
    assert ranks[0]['wrapper'] == 'MMDistributedDataParallel'
    for rank in ranks:  # every rank holds the gathered verdict
        res = rank['result']
        assert res['teacher'] == one['teacher'] and res['random'] == one['random']
        assert res['metric'] == one['metric'] and res['gain'] == one['gain']
        assert res['num_images'] == one['num_images'] == 5


def test_coco_metric_judges_the_scored_images_and_output_is_labelled(
        tiny_coco, trained_teacher, tmp_path):
    """mmdet's CocoMetric with an ann_file scores predictions against every image of the file:
    3 of 6 images must score as the same 3 images do on their own; the tables say whose."""
    # the tiny RPN's proposals as boxes: mAP@0.5 0.124 (teacher) vs 0.068 (chance) on 3 images
    MAP50 = dict(metric='coco/bbox_mAP_50', rule='greater', min_gain=0.02)
    three = make_tiny_coco(str(tmp_path / 'three'), num_images=3, seed=1, split='val')

    def coco(root):
        return dict(type='CocoMetric', ann_file=osp.join(root, 'annotations', 'val.json'),
                    metric='bbox')

    part, part_lines = _checked(check_cfg(str(tmp_path / 'w6'), tiny_coco, trained_teacher,
                                          num_images=3, val_evaluator=coco(tiny_coco),
                                          **MAP50))
    whole, whole_lines = _checked(check_cfg(str(tmp_path / 'w3'), three['data_root'],
                                            trained_teacher, num_images=20,
                                            val_evaluator=coco(three['data_root']), **MAP50))
    for res in (part.result, whole.result):
        assert res['metric'] == 'coco/bbox_mAP_50' and res['num_images'] == 3
    assert part.result['teacher'] == whole.result['teacher'] == pytest.approx(0.124)
    assert part.result['random'] == whole.result['random'] == pytest.approx(0.068)
    for lines in (part_lines, whole_lines):
        assert any('coco/bbox_mAP_50 = 0.124 on 3 validation images' in line
                   for line in lines)
        ap = [line for line in lines
              if 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]' in line]
        assert len(ap) == 2
        assert ap[0].startswith('[teacher check: teacher] ')
        assert ap[1].startswith('[teacher check: chance baseline] ')
        # pycocotools' own prints come through the logger, labelled too
        assert any(line.startswith('[teacher check: teacher] ') and 'DONE' in line
                   for line in lines)


def test_a_network_without_a_detection_scores_the_worst_value():
    """mmdet's CocoMetric returns no metric at all when no image has a detection (a random
    network on COCO: every class below score_thr); that network scores the worst value."""
    assert metric_value({'coco/bbox_mAP': 0.25}, 'coco/bbox_mAP', 'greater', 1.) == 0.25
    assert metric_value({}, 'coco/bbox_mAP', 'greater', 1.) == 0.
    assert metric_value({}, 'caltech/Reasonable_MR-2', 'less', 100.) == 100.
    assert metric_value({}, 'my/miss_rate', 'less', None) == math.inf
    with pytest.raises(KeyError, match=r"the val metrics \['coco/bbox_mAP_50'\] have no "
                       r"'coco/bbox_mAP'"):
        metric_value({'coco/bbox_mAP_50': 0.5}, 'coco/bbox_mAP', 'greater', 1.)


def test_true_number_of_images_is_reported(tiny_coco, trained_teacher, tmp_path):
    hook, lines = _checked(check_cfg(str(tmp_path), tiny_coco, trained_teacher, num_images=20))
    assert any('recall@10_iou50 = 53.333 on 6 validation images' in line for line in lines)
    assert '[teacher check: teacher] proposal recall over 15 gts, 6 images' in lines
    assert '[teacher check: chance baseline] proposal recall over 15 gts, 6 images' in lines
    assert hook.result['num_images'] == 6


def test_resume_reuses_the_verdict(tiny_coco, trained_teacher, tmp_path):
    work = str(tmp_path / 'work')
    runner = Runner.from_cfg(check_cfg(work, tiny_coco, trained_teacher, max_iters=1))
    hook = the_hook(runner)
    runner.train()
    ckpt = torch.load(osp.join(work, 'iter_1.pth'), weights_only=False)
    verdict = ckpt['teacher_check']
    assert not hook.reused
    assert verdict == hook.result and verdict['teacher_ckpt'] == trained_teacher
    assert {type(v) for v in verdict.values()} <= {str, int, float}
    torch.save({'teacher_check': verdict}, str(tmp_path / 'verdict.pth'))
    assert torch.load(str(tmp_path / 'verdict.pth'), weights_only=True)['teacher_check'] == \
        verdict

    def no_scoring(*args, **kwargs):
        raise AssertionError('scored again')

    cfg = check_cfg(work, tiny_coco, trained_teacher, max_iters=2)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    hook = the_hook(resumed)
    hook._check = no_scoring
    with LogLines() as log:
        resumed.train()
    assert resumed.iter == 2 and hook.reused and hook.result == verdict
    assert any('verdict reused from the loaded checkpoint, not scored again' in line and
               'recall@10_iou50 = 53.333' in line for line in log.lines)
    assert torch.load(osp.join(work, 'iter_2.pth'), weights_only=False)['teacher_check'] == \
        verdict

    # a verdict reached for another teacher file: scored again
    path = str(tmp_path / 'other_teacher.pth')
    torch.save(dict(ckpt, teacher_check=dict(verdict, teacher_sha256='0' * 64)), path)
    cfg = check_cfg(str(tmp_path / 'other'), tiny_coco, trained_teacher, max_iters=2)
    cfg.resume, cfg.load_from = True, path
    again = Runner.from_cfg(cfg)
    hook = the_hook(again)
    with LogLines() as log:
        again.train()
    assert not hook.reused and hook.result == verdict
    assert any('not reusing the verdict in the loaded checkpoint: it was reached for another '
               f'teacher checkpoint ({trained_teacher}); checking again' in line
               for line in log.lines)
    # ... so are one reached with other settings, and a malformed one
    for why, entry in (('other settings', dict(verdict, settings='num_images=1 metric=None '
                                               'rule=None seed=0')),
                       ('malformed', dict(verdict, teacher='53.3')),
                       ('malformed', dict(verdict, gain=float('nan'))),
                       ('malformed', 'verdict')):
        hook.after_load_checkpoint(again, dict(teacher_check=entry))
        with LogLines() as log:
            assert hook._reusable(verdict['teacher_sha256']) is None
        assert any(why in line for line in log.lines), why
    hook.after_load_checkpoint(again, dict(teacher_check=verdict))
    assert hook._reusable(verdict['teacher_sha256']) == verdict


def test_proposal_fast_failure_points_to_proposal_recall_metric(tiny_coco, trained_teacher,
                                                                tmp_path):
    evaluator = dict(type='CocoMetric', ann_file=osp.join(tiny_coco, 'annotations', 'val.json'),
                     metric='proposal_fast')
    runner = Runner.from_cfg(check_cfg(str(tmp_path), tiny_coco, trained_teacher,
                                       val_evaluator=evaluator))
    with pytest.raises(RuntimeError, match=r"metric='proposal_fast'\) failed: ValueError.*"
                       r"numpy >= 1\.24.*val_evaluator = dict\(type='ProposalRecallMetric'"):
        the_hook(runner).before_train(runner)

