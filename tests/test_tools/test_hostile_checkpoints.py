"""A checkpoint that runs code when unpickled is refused by every entry point that reads one.

The stealth legacy payload (its first record runs code and returns the magic number, the rest is
a genuine checkpoint) loaded normally through all of these before the weights-only loader.
"""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint

from mmdet.registry import MODELS
from mmmimic.testing.checkpoint_payloads import write_legacy_stealth
from mmmimic.testing.distill import MIMIC_CFG, TEACHER_CFG, mimic_model_cfg

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
from test_train_test_tools import CONFIG, _cfg_options, _fail_in_process  # noqa: E402


@pytest.fixture
def payload(tmp_path):
    path, marker = str(tmp_path / 'stealth.pth'), str(tmp_path / 'marker')
    write_legacy_stealth(path, marker)
    yield path
    assert not osp.exists(marker), 'the payload ran'


def _assert_refused(err, path):
    assert f'refused to load checkpoint {path}' in err and 'GLOBAL eval' in err, err


def test_test_tool(repo_root, tiny_coco, payload, monkeypatch):
    _assert_refused(_fail_in_process(repo_root, monkeypatch, 'tools/test.py', CONFIG, payload,
                                     *_cfg_options(tiny_coco)), payload)


def test_train_resume_and_load_from(repo_root, tiny_coco, payload, tmp_path, monkeypatch):
    _assert_refused(_fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG,
                                     '--work-dir', str(tmp_path / 'a'), '--resume', payload,
                                     *_cfg_options(tiny_coco)), payload)
    _assert_refused(_fail_in_process(repo_root, monkeypatch, 'tools/train.py', CONFIG,
                                     '--work-dir', str(tmp_path / 'b'),
                                     *_cfg_options(tiny_coco, load_from=payload)), payload)


def test_teacher_ckpt(payload):
    with pytest.raises(Exception) as excinfo:
        MODELS.build(mimic_model_cfg(payload))
    _assert_refused(str(excinfo.value), payload)


def test_text_file_as_teacher_ckpt_names_the_file(tmp_path):
    text = tmp_path / 'teacher.pth'
    text.write_text(open(TEACHER_CFG).read())
    with pytest.raises(RuntimeError, match=f'cannot read checkpoint {text}: it is not a torch'):
        MODELS.build(mimic_model_cfg(str(text)))


def test_extract_student(repo_root, payload, tmp_path, monkeypatch):
    _assert_refused(_fail_in_process(
        repo_root, monkeypatch, 'tools/model_converters/extract_student.py', MIMIC_CFG, payload,
        str(tmp_path / 'out')), payload)


def test_pretrained_and_stage2_init(payload):
    student = MODELS.build(Config.fromfile(TEACHER_CFG).model)
    with pytest.raises(Exception) as excinfo:
        load_checkpoint(student, payload)  # init_cfg=dict(type='Pretrained') ends here
    _assert_refused(str(excinfo.value), payload)
    backbone = dict(Config.fromfile(TEACHER_CFG).model.backbone)
    backbone['init_cfg'] = dict(type='MimicStudentInit', checkpoint=payload, prefix='backbone.')
    module = MODELS.build(backbone)
    with pytest.raises(Exception) as excinfo:
        module.init_weights()
    _assert_refused(str(excinfo.value), payload)
