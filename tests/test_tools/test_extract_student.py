"""extract_student round trip: same predictions from the distiller and the exported student."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import get_state_dict, load_checkpoint, save_checkpoint

from mmmimic.testing import run_tool

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
sys.path.insert(0, osp.join(ROOT, 'tests', 'test_models', 'test_distillers'))
from mimic_test_utils import (MIMIC_CFG, build_distiller, make_batch,  # noqa: E402
                              make_teacher_ckpt)


TOOL = osp.join(ROOT, 'tools', 'model_converters', 'extract_student.py')


def _run_tool(*argv):
    """The command line, in this process (no interpreter start-up)."""
    run_tool(TOOL, *argv)


def test_extract_student_round_trip(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: faster on a shared machine
    try:
        _round_trip(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _round_trip(tmp_path):
    teacher_ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
    torch.manual_seed(0)
    distiller = build_distiller(teacher_ckpt)
    # a few mimic steps so that BN statistics and weights are not the initial ones
    optim = torch.optim.SGD([p for p in distiller.parameters() if p.requires_grad], lr=0.01)
    distiller.train()
    for step in range(2):
        inputs, samples = make_batch(seed=step)
        losses = distiller.loss(inputs, samples)
        sum(sum(v) if isinstance(v, list) else v for v in losses.values()).backward()
        optim.step()
        optim.zero_grad()
    ckpt = str(tmp_path / 'iter_2.pth')
    save_checkpoint(
        dict(state_dict=get_state_dict(distiller), meta=dict(dataset_meta=dict(classes=(
            'person', ))), message_hub=dict(), optimizer=optim.state_dict()), ckpt)
    cfg = Config.fromfile(MIMIC_CFG)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg_path = str(tmp_path / 'mimic.py')
    cfg.dump(cfg_path)

    _run_tool(cfg_path, ckpt, str(tmp_path / 'export'))
    out_cfg, out_ckpt = tmp_path / 'export' / 'student.py', tmp_path / 'export' / 'student.pth'
    exported = torch.load(out_ckpt, weights_only=True)
    assert set(exported) == {'state_dict', 'meta'}
    keys = list(exported['state_dict'])
    assert keys and not any(k.startswith(('student.', 'teacher.', 'connector.')) for k in keys)
    assert any(k.startswith('backbone.') for k in keys)
    student_cfg = Config.fromfile(str(out_cfg))
    assert student_cfg.model.type == 'RPN'
    assert 'teacher' not in student_cfg.model and 'teacher_config' not in student_cfg

    # mmdet's own loading path, strictly: no missing or unexpected keys
    from mmdet.apis import init_detector
    student = init_detector(str(out_cfg), str(out_ckpt), device='cpu')
    load_checkpoint(student, str(out_ckpt), strict=True)
    assert student.dataset_meta['classes'] == ('person', )

    distiller.eval()
    inputs, samples = make_batch(num_imgs=2, seed=7)
    with torch.no_grad():
        before = distiller.predict(inputs, copy.deepcopy(samples))
        after = student.predict(inputs, copy.deepcopy(samples))
    for b, a in zip(before, after):
        assert len(b.pred_instances) > 0
        assert torch.equal(b.pred_instances.bboxes, a.pred_instances.bboxes)
        assert torch.equal(b.pred_instances.scores, a.pred_instances.scores)

    # A second export into the same folder keeps the first one unless --overwrite.
    written = out_ckpt.read_bytes()
    with pytest.raises(FileExistsError, match=f'{out_cfg} already exists; pass --overwrite'):
        _run_tool(cfg_path, ckpt, str(tmp_path / 'export'))
    assert out_ckpt.read_bytes() == written
    _run_tool(cfg_path, ckpt, str(tmp_path / 'export'), '--overwrite')
    assert torch.equal(torch.load(out_ckpt, weights_only=True)['state_dict'][keys[0]],
                       exported['state_dict'][keys[0]])
    # An output "folder" that is a file, and a checkpoint without student entries.
    with pytest.raises(NotADirectoryError, match='is a file'):
        _run_tool(cfg_path, ckpt, str(out_ckpt))
    with pytest.raises(KeyError, match=r'no "student\." entries in .*student\.pth'):
        _run_tool(cfg_path, str(out_ckpt), str(tmp_path / 'again'))


CROSS_SCALE_CFG = osp.join(ROOT, 'configs', 'cross_scale', 'tiny',
                           'rpn_r18-w8-deconv_mimic_tiny.py')


def _raw_batch(seed, sizes=((96, 128), (90, 120))):
    """What a test dataloader yields: uint8 frames (full size) with their metainfo."""
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        samples.append(DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(
            round(h / 1.25), round(w / 1.25)), scale_factor=(1.25, 1.25))))
    return dict(inputs=inputs, data_samples=samples)


def test_extracted_cross_scale_student_predicts_like_the_distiller(tmp_path):
    """The extracted student of a cross-scale distiller (student_input_scale=0.5) reads the
    full-size frames and gives the distiller's detections: its config carries the scale in a
    ScaledInputDataPreprocessor (test_step = what tools/test.py runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher_ckpt = make_teacher_ckpt(str(tmp_path / 'teacher.pth'))
        torch.manual_seed(0)
        distiller = build_distiller(teacher_ckpt, config=CROSS_SCALE_CFG).eval()
        assert distiller.student_input_scale == 0.5
        ckpt = str(tmp_path / 'iter_1.pth')
        save_checkpoint(dict(state_dict=get_state_dict(distiller), meta=dict()), ckpt)
        cfg = Config.fromfile(CROSS_SCALE_CFG)
        cfg.model.teacher_ckpt = teacher_ckpt
        cfg_path = str(tmp_path / 'cross_scale.py')
        cfg.dump(cfg_path)

        _run_tool(cfg_path, ckpt, str(tmp_path / 'export'))
        out_cfg = str(tmp_path / 'export' / 'student.py')
        dp = Config.fromfile(out_cfg).model.data_preprocessor
        assert dp.type == 'ScaledInputDataPreprocessor' and dp.input_scale == 0.5
        assert dp.pad_size_divisor == cfg.model.student.data_preprocessor.pad_size_divisor
        from mmdet.apis import init_detector
        student = init_detector(out_cfg, str(tmp_path / 'export' / 'student.pth'),
                                device='cpu')
        for seed in (0, 1):
            with torch.no_grad():
                expected = distiller.test_step(_raw_batch(seed))
                got = student.test_step(_raw_batch(seed))
            for e, g in zip(expected, got):
                assert len(e.pred_instances) > 0
                assert g.ori_shape == e.ori_shape  # (img_shape: the student's input size)
                assert torch.equal(g.pred_instances.bboxes, e.pred_instances.bboxes)
                assert torch.equal(g.pred_instances.scores, e.pred_instances.scores)
        # boxes in original-frame pixels: clipped to the 128 / 1.25 = 102.4 px wide original
        assert abs(float(got[0].pred_instances.bboxes[:, 2].max()) - 102.4) < 1e-3
    finally:
        torch.set_num_threads(threads)


def _tiny_mimic_ckpt(tmp_path):
    ckpt = str(tmp_path / 'mimic.pth')
    torch.save(dict(state_dict={'student.backbone.w': torch.arange(3.)}), ckpt)
    return ckpt


def test_planted_part_symlink_is_not_followed(tmp_path):
    """A ``student.pth.part`` symlink planted in the output folder does not redirect the write."""
    ckpt, out = _tiny_mimic_ckpt(tmp_path), tmp_path / 'export'
    out.mkdir()
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    (out / 'student.pth.part').symlink_to(victim)
    _run_tool(MIMIC_CFG, ckpt, str(out))
    assert victim.read_text() == 'precious'
    assert torch.equal(torch.load(out / 'student.pth', weights_only=True)['state_dict']
                       ['backbone.w'], torch.arange(3.))


def test_interrupted_export_leaves_nothing_behind(tmp_path, monkeypatch):
    ckpt, out = _tiny_mimic_ckpt(tmp_path), tmp_path / 'export'
    real_save = torch.save

    def interrupted_save(obj, path, *args, **kwargs):
        with open(path, 'wb') as fh:
            fh.write(b'half a checkpoint')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        _run_tool(MIMIC_CFG, ckpt, str(out))
    assert sorted(p.name for p in out.iterdir()) == []
    monkeypatch.setattr(torch, 'save', real_save)
    _run_tool(MIMIC_CFG, ckpt, str(out))  # the rerun needs no --overwrite
    assert sorted(p.name for p in out.iterdir()) == ['student.pth', 'student.py']
