"""The tiny fixture configs ship in mmmimic/testing/configs/ and load from there; their runtime
and tiny-COCO bases restate configs/_base_/default_runtime.py and datasets/tiny_coco.py exactly."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmmimic.testing import CONFIG_ROOT, config_path

ROOT = osp.normpath(osp.join(osp.dirname(__file__), '..', '..'))
FIXTURES = sorted(p for p in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py'))
                  if osp.basename(osp.dirname(p)) != '_base_')


def test_fixture_runtime_equals_the_zoo_runtime():
    fixture = Config.fromfile(osp.join(CONFIG_ROOT, '_base_', 'default_runtime.py'))
    zoo = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert fixture.to_dict() == zoo.to_dict()


def test_fixture_tiny_data_base_equals_the_zoo_one():
    """The quickstart's tiny-COCO base (configs/_base_/) and the fixtures' copy stay equal."""
    name = osp.join('_base_', 'datasets', 'tiny_coco.py')
    fixture = Config.fromfile(osp.join(CONFIG_ROOT, name))
    zoo = Config.fromfile(osp.join(ROOT, 'configs', name))
    assert fixture.to_dict() == zoo.to_dict()


def test_fixtures_are_all_there():
    names = sorted(osp.relpath(p, CONFIG_ROOT) for p in FIXTURES)
    assert len(names) == 16, names
    assert {osp.dirname(n) for n in names} == {
        'smoke', 'mimic', 'cross_scale', 'stage2', 'two_stage_mimic', 'one_stage'}


@pytest.mark.parametrize('path', FIXTURES, ids=lambda p: osp.relpath(p, CONFIG_ROOT))
def test_fixture_loads_and_its_teacher_exists(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.train_dataloader.dataset.data_root == 'data/tiny_coco/'
    teacher = cfg.model.get('teacher')
    if teacher is not None:
        assert osp.isfile(teacher), teacher
        assert osp.realpath(teacher).startswith(osp.realpath(CONFIG_ROOT))


def test_config_path():
    path = config_path('mimic/rpn_r18-w16_tiny.py')
    assert osp.isfile(path) and osp.isabs(path)
    with pytest.raises(FileNotFoundError, match="no fixture config 'mimic/nope.py'"):
        config_path('mimic/nope.py')
