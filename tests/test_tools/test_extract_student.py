"""extract_student round trip: same predictions from the distiller and the exported student."""
import copy
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import get_state_dict, load_checkpoint, save_checkpoint

from mmdet.registry import MODELS
from mmmimic.testing import run_tool
from mmmimic.testing.distill import MIMIC_CFG, build_distiller, make_batch, make_teacher_ckpt

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')


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


CROSS_SCALE_CFG = osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'cross_scale',
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


# --- The extracted student is a config mmdet's own tools load (issue #25, item 3) -------------
SMOKE_CFG = osp.abspath(osp.join(ROOT, 'mmmimic', 'testing', 'configs', 'smoke',
                                 'faster-rcnn_r18-tiny_tiny-coco.py'))
MMDET_TEST_PY = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'tools', 'test.py')

# Runs in a fresh interpreter: (a) mmdet's own tools/test.py entry code and (b) one fine-tuning
# iteration with a plain mmengine Runner, on the plain student with mmmimic made unimportable;
# then (c) tools/test.py on the student that needs mmmimic, which its custom_imports must load.
_MMDET_ONLY = r'''
import importlib.abc, json, runpy, sys

class NoMmmimic(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == 'mmmimic' or name.startswith('mmmimic.'):
            raise ModuleNotFoundError(f'No module named {name!r} (blocked: plain mmdet)')

args = json.loads(sys.argv[1])
blocker = NoMmmimic()
sys.meta_path.insert(0, blocker)

def mmdet_test(cfg, ckpt, work_dir):
    sys.argv = [args['test_py'], cfg, ckpt, '--work-dir', work_dir]
    runpy.run_path(args['test_py'], run_name='__main__')

cfg, ckpt, work_dir = args['plain']
mmdet_test(cfg, ckpt, work_dir + '/test')
print('(a) mmdet test done', flush=True)

from mmengine.config import Config
from mmengine.runner import Runner
ft = Config.fromfile(cfg)
ft.load_from = ckpt
ft.work_dir = work_dir + '/finetune'
ft.train_cfg.max_iters = 1
ft.default_hooks.checkpoint.interval = 1
Runner.from_cfg(ft).train()
print('(b) fine-tuned', flush=True)
assert 'mmmimic' not in sys.modules, 'mmmimic was imported'
print('PLAIN MMDET OK', flush=True)

sys.meta_path.remove(blocker)
mmdet_test(*args['cross'][:2], args['cross'][2] + '/test')
assert 'mmmimic' in sys.modules, 'custom_imports did not import mmmimic'
print('CROSS-SCALE WITH MMMIMIC OK', flush=True)
'''


def _random_ckpt(config, path, seed=0):
    """A checkpoint of ``config``'s model with random weights (a stand-in trained teacher)."""
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def _distiller_run(student, teacher_ckpt, out_dir, **wrap):
    """What ``tools/train.py STUDENT --teacher ...`` leaves: the dumped distiller config and a
    distiller checkpoint; then ``extract_student.py`` on them. Returns the exported files and
    the distiller config."""
    from mmmimic.apis import wrap_with_teacher
    cfg = wrap_with_teacher(student, SMOKE_CFG, teacher_ckpt, teacher_check_images=6, **wrap)
    os.makedirs(out_dir)
    cfg_path = osp.join(out_dir, 'distiller.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    distiller = MODELS.build(copy.deepcopy(cfg.model))
    ckpt = osp.join(out_dir, 'iter_1.pth')
    save_checkpoint(dict(state_dict=get_state_dict(distiller), meta=dict(
        dataset_meta=dict(classes=('person', )))), ckpt)
    _run_tool(cfg_path, ckpt, osp.join(out_dir, 'export'))
    return osp.join(out_dir, 'export', 'student.py'), osp.join(out_dir, 'export',
                                                               'student.pth'), cfg


def test_extracted_students_load_in_mmdets_own_tools(tiny_coco, tmp_path, capsys):
    """Distillers of mmdet's Faster R-CNN made by ``wrap_with_teacher`` (the teacher check on),
    extracted: the plain student's config has no mmmimic hook, import or distiller key, and
    mmdet's own ``tools/test.py`` scores it and a plain ``Runner`` fine-tunes it with mmmimic
    unimportable; the cross-scale student's config imports mmmimic for its
    ``ScaledInputDataPreprocessor`` and mmdet's ``tools/test.py`` scores it too."""
    from mmmimic.apis.student_export import mmmimic_types
    from mmmimic.testing import load_tiny_config
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher_ckpt = _random_ckpt(SMOKE_CFG, str(tmp_path / 'teacher.pth'))
        # the project's smoke config as it is: mmdet's model, mmmimic's runtime (custom_imports
        # and RNGStateHook), CocoMetric: nothing in the student needs mmmimic
        student = load_tiny_config(SMOKE_CFG, tiny_coco, str(tmp_path / 'w'))
        assert student.custom_imports.imports == ['mmmimic']
        plain_cfg, plain_ckpt, distiller_cfg = _distiller_run(student, teacher_ckpt,
                                                              str(tmp_path / 'plain'))
        assert 'a plain mmdet config: it imports no mmmimic' in capsys.readouterr().out
        assert 'TeacherCheckHook' in str(distiller_cfg.custom_hooks)
        assert 'teacher_config' in distiller_cfg
        plain = Config.fromfile(plain_cfg)
        assert plain.model.type == 'FasterRCNN'
        assert 'custom_imports' not in plain and 'custom_hooks' not in plain
        assert 'teacher_config' not in plain and 'work_dir' not in plain
        assert set(plain.keys()) <= set(student.keys()), set(plain.keys()) - set(student.keys())
        assert mmmimic_types(plain.to_dict()) == []

        # a plain mmdet student (no mmmimic anywhere) distilled across scales
        bare = copy.deepcopy(student)
        bare.pop('custom_imports')
        bare.pop('custom_hooks')
        cross_cfg, cross_ckpt, _ = _distiller_run(bare, teacher_ckpt, str(tmp_path / 'cross'),
                                                  student_scale=0.5)
        assert 'imports mmmimic (custom_imports) for: ScaledInputDataPreprocessor\n' in \
            capsys.readouterr().out
        cross = Config.fromfile(cross_cfg)
        assert cross.model.data_preprocessor.type == 'ScaledInputDataPreprocessor'
        assert cross.custom_imports == dict(imports=['mmmimic'], allow_failed_imports=False)
        assert [h.type for h in cross.get('custom_hooks', [])] in ([], ['RNGStateHook'])
        assert 'teacher_config' not in cross
        assert mmmimic_types(cross.to_dict()) in (['ScaledInputDataPreprocessor'], [
            'RNGStateHook', 'ScaledInputDataPreprocessor'])
    finally:
        torch.set_num_threads(threads)

    args = dict(test_py=MMDET_TEST_PY, plain=[plain_cfg, plain_ckpt, str(tmp_path / 'plain')],
                cross=[cross_cfg, cross_ckpt, str(tmp_path / 'cross')])
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([sys.executable, '-c', _MMDET_ONLY, json.dumps(args)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'PLAIN MMDET OK' in out and 'CROSS-SCALE WITH MMMIMIC OK' in out, out[-6000:]
    assert out.count('coco/bbox_mAP:') >= 2, out[-6000:]  # both test runs scored the val set
    # the fine-tuning started from the extracted weights and trained them
    assert f'Load checkpoint from {plain_ckpt}' in out, out[-6000:]
    tuned = torch.load(str(tmp_path / 'plain' / 'finetune' / 'iter_1.pth'),
                       weights_only=False)['state_dict']
    start = torch.load(plain_ckpt, weights_only=True)['state_dict']
    assert tuned.keys() == start.keys()
    assert not torch.equal(tuned['rpn_head.rpn_conv.weight'], start['rpn_head.rpn_conv.weight'])
