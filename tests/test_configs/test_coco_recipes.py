"""The COCO recipes of ``configs/coco_mimic/`` (mmdet's own students and teachers through
``mmdet::``): each trains two iterations with the MMEngine Runner on tiny generated COCO data
(images shrunk, a teacher checkpoint of the teacher's random init, the recipe's own hooks, loop,
schedules and validation), and each names mmdet's published teacher checkpoint in its comment,
the folder's README and its metafile."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmdet
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmmimic.engine.hooks.teacher_check_hook import teacher_config_of
from mmmimic.models.distillers.teacher import config_file, teacher_model_cfg
from mmmimic.testing import make_tiny_coco

ROOT = osp.normpath(osp.join(osp.dirname(__file__), '..', '..'))
FOLDER = osp.join(ROOT, 'configs', 'coco_mimic')
RECIPES = sorted(glob.glob(osp.join(FOLDER, '*.py')))
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
#: the tiny stand-in for mmdet's 1333x800 (Resize scale of every pipeline)
TINY_SCALE = (128, 96)


def _params():
    return [pytest.param(p, id=osp.basename(p)) for p in RECIPES]


def test_the_folder_holds_the_recipes_of_the_issue():
    names = [osp.basename(p) for p in RECIPES]
    for family in ('faster-rcnn', 'retinanet'):
        for schedule in ('1x', '2x'):
            assert f'{family}_r50_fpn_mimic-r101_8xb2-{schedule}_coco.py' in names
    assert 'faster-rcnn_r50_fpn_half-input_mimic-r101_8xb2-1x_coco.py' in names


def _published_checkpoint(teacher: str) -> str:
    """The download URL mmdet's installed metafile gives the teacher config ``mmdet::x/y.py``."""
    folder, name = teacher.split('::')[1].split('/')
    with open(osp.join(MMDET_CONFIGS, folder, 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    return next(m['Weights'] for m in models
                if m['Config'] == f'configs/{folder}/{name}')


@pytest.mark.parametrize('path', RECIPES, ids=osp.basename)
def test_recipe_names_mmdets_published_teacher_checkpoint(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'FeatureMimicDistiller' and cfg.model.mimic_levels == 'auto'
    assert cfg.default_scope == 'mmdet' and 'mmmimic' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['RNGStateHook', 'TeacherCheckHook']
    teacher = cfg.model.teacher
    assert teacher == cfg.teacher_config and teacher.startswith('mmdet::')
    assert osp.isfile(config_file(teacher))
    url = _published_checkpoint(teacher)
    # a local path the user downloads to, named as mmdet publishes it
    assert cfg.model.teacher_ckpt == 'checkpoints/' + osp.basename(url)
    with open(path) as f:
        assert f'wget -P checkpoints {url}' in f.read()
    with open(osp.join(FOLDER, 'README.md')) as f:
        assert url in f.read()
    with open(osp.join(FOLDER, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    name = osp.splitext(osp.basename(path))[0]
    entry = next(m for m in meta['Models'] if m['Name'] == name)
    assert entry['Metadata']['Teacher Checkpoint'] == url
    assert entry['Metadata']['Teacher Config'] == teacher


def test_package_scoped_teacher_config_resolves_or_is_refused():
    cfg = teacher_model_cfg('mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py')
    assert cfg.type == 'FasterRCNN' and cfg.backbone.depth == 101
    assert teacher_config_of(dict(teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py')) \
        .bbox_head.type == 'RetinaHead'
    with pytest.raises(FileNotFoundError, match=r'teacher config not found: '
                       r'mmdet::faster_rcnn/no-such\.py \(file ".*no-such\.py" does not exist'):
        teacher_model_cfg('mmdet::faster_rcnn/no-such.py')
    with pytest.raises(FileNotFoundError, match=r'teacher config not found: mmfoo::a/b\.py '
                       r'\(mmengine does not support to load mmfoo config'):
        teacher_model_cfg('mmfoo::a/b.py')


@pytest.fixture(scope='module')
def tiny_coco80(tmp_path_factory) -> str:
    """4 train images (two iterations at mmdet's 2 per batch) and 2 val images, 128x96, annotated
    with COCO's 80 categories (the objects are category 1, ``person``), so that mmdet's own
    80-class heads and ``CocoDataset`` metainfo are used unchanged."""
    root = str(tmp_path_factory.mktemp('tiny_coco80'))
    classes = CocoDataset.METAINFO['classes']
    make_tiny_coco(root, num_images=4, seed=0, split='train', classes=classes)
    make_tiny_coco(root, num_images=2, seed=1, split='val', classes=classes)
    return root + '/'


#: the teacher's classifier bias and the entries of class 0 (``person``): raised in the random
#: teacher so that it detects (a random init scores every class below mmdet's score_thr)
CLASSIFIER_BIAS = {'FasterRCNN': ('roi_head.bbox_head.fc_cls.bias', slice(0, 1)),
                   'RetinaNet': ('bbox_head.retina_cls.bias', slice(0, None, 80))}


@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """A writer of random-init teacher checkpoints (person class raised, so that the teacher
    check has detections to score), one per distinct teacher model."""
    folder, written = tmp_path_factory.mktemp('teachers'), {}

    def write(teacher: str) -> str:
        model_cfg = teacher_model_cfg(teacher)
        model_cfg.backbone.init_cfg = None  # no ImageNet download
        key = json.dumps(model_cfg.to_dict(), sort_keys=True)
        if key not in written:
            with DefaultScope.overwrite_default_scope('mmdet'):
                torch.manual_seed(0)
                model = MODELS.build(model_cfg)
                model.init_weights()
            name, person = CLASSIFIER_BIAS[model_cfg.type]
            with torch.no_grad():
                model.get_parameter(name)[person] = 4.0
            path = str(folder / f'teacher{len(written)}.pth')
            torch.save({'state_dict': model.state_dict()}, path)
            written[key] = path
        return written[key]
    return write


def _tiny(cfg: Config, data_root: str, teacher_ckpt: str, work_dir: str) -> Config:
    """The recipe on the tiny data: its own pipelines with the tiny scale, the data and the
    evaluator pointed at ``data_root``, no worker processes, no ImageNet download, the teacher
    check kept (on 2 images: the random teacher must beat chance, which detects nothing)."""
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=data_root, ann_file=f'annotations/{split}.json',
                              data_prefix=dict(img=f'{split}/'))
        resizes = [t for t in loader.dataset.pipeline if t.type == 'Resize']
        assert [t.scale for t in resizes] == [(1333, 800)]  # mmdet's input size
        resizes[0].scale = TINY_SCALE
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = data_root + 'annotations/val.json'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.model.student.backbone.init_cfg = None
    cfg.model.teacher_ckpt = teacher_ckpt
    check = next(h for h in cfg.custom_hooks if h.type == 'TeacherCheckHook')
    check.update(num_images=2, min_gain=0.)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 10  # no checkpoint written
    cfg.visualizer.name = 'vis_' + osp.basename(work_dir)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = work_dir
    return cfg


class _Losses(Hook):
    def __init__(self):
        self.iters = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iters.append({k: float(v) for k, v in outputs.items()})


@pytest.mark.parametrize('path', _params())
def test_recipe_trains_two_iterations_on_tiny_coco(path, tiny_coco80, teacher_ckpts, tmp_path,
                                                   single_torch_thread):
    cfg = Config.fromfile(path)
    cfg = _tiny(cfg, tiny_coco80, teacher_ckpts(cfg.model.teacher), str(tmp_path / 'run'))
    runner = Runner.from_cfg(cfg)
    losses = _Losses()
    runner.register_hook(losses)
    runner.train()

    assert runner.iter == 2 and len(losses.iters) == 2
    for log in losses.iters:
        assert all(math.isfinite(v) for v in log.values()), log
        assert log['loss_mimic'] > 0, log
    distiller = runner.model
    scale = cfg.model.get('student_input_scale', 1.0)
    assert distiller.student_input_scale == scale
    # every pair meets at one stride in the teacher's pixels; at half input a level shift
    pairs = [(p['student'], p['teacher']) for p in distiller.mimic_pairs]
    shift = 1 if scale == 0.5 else 0
    n_levels = 5 - shift  # FPN's 5 levels; at half input the coarsest has no partner
    assert pairs == [(i, i + shift) for i in range(n_levels)]
    check = next(h for h in runner.hooks if type(h).__name__ == 'TeacherCheckHook')
    assert check.result['metric'] == 'coco/bbox_mAP' and check.result['num_images'] == 2
    # the chance baseline detects nothing (mmdet's CocoMetric then returns no metric): mAP 0
    assert check.result['random'] == 0. and check.result['gain'] >= 0.
