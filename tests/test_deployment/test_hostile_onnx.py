"""An .onnx file is untrusted data (issue 24): it may not run code, hang, or be scored as another
network, and an export may not replace a user's file.

Each finding is shown with a real file: first what it does under full trust (the registry build
of its metadata writes a marker; onnxruntime never finishes its graph), then the refusal by the
entry point, in a subprocess, with the file and key/node named and no marker written.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from deploy_utils import ROOT, SKIP_REASON, TINY

onnx = pytest.importorskip('onnx', reason=SKIP_REASON)
pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mmmimic.deployment import (MAX_LOOP_TRIPS, OnnxDetector, RefusedOnnxError,  # noqa: E402
                                config_model_hash, export_onnx, onnx_test_cfg,
                                read_onnx_meta)

RPN = osp.join(ROOT, TINY['rpn'])  # base width 16
# same preprocessing
RPN_W8 = osp.join(ROOT, 'mmmimic/testing/configs/mimic/rpn_r18-w8_scratch_tiny.py')
SPEED_TOOL = osp.join(ROOT, 'tools/deployment/benchmark_onnx_speed.py')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A real export of the tiny RPN (64x64, initial weights) and its metadata dict."""
    out = str(tmp_path_factory.mktemp('export') / 'rpn.onnx')
    meta = export_onnx(RPN, None, out, shape=(64, 64))
    return out, meta


def _with_meta(src, dst, text):
    """A copy of ``src`` whose ``mmmimic`` metadata is ``text``."""
    model = onnx.load(src)
    model.metadata_props[0].value = text
    onnx.save(model, dst)
    return dst


def _python(code, *args, timeout=120):
    """Run ``code`` in a fresh interpreter (the repository on its path)."""
    return subprocess.run([sys.executable, '-c', code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


LOAD = ('import sys\nfrom mmmimic.deployment import OnnxDetector\n'
        'OnnxDetector(sys.argv[1], device="cpu")\nprint("LOADED")\n')


# ------------------------------------------------------------------ 1. metadata runs code
def test_preprocessor_payload_in_metadata_runs_under_full_trust_and_is_refused(
        exported, tmp_path):
    src, meta = exported
    marker = str(tmp_path / 'marker')
    payload = dict(type='subprocess.run',
                   args=[sys.executable, '-c', f'open({marker!r}, "w").close()'])
    text = json.dumps(dict(meta, data_preprocessor=payload))
    hostile = _with_meta(src, str(tmp_path / 'hostile.onnx'), text)
    # full trust (what OnnxDetector did): the registry imports the dotted name and calls it
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    MODELS.build(json.loads(onnx.load(hostile).metadata_props[0].value)['data_preprocessor'])
    assert osp.exists(marker), 'the payload did not run under full trust'
    os.remove(marker)
    proc = _python(LOAD, hostile)
    assert proc.returncode != 0 and 'LOADED' not in proc.stdout
    assert (f'RefusedOnnxError: {hostile}: metadata "mmmimic" key data_preprocessor.type: '
            '"subprocess.run" is not an allowed data preprocessor (allowed: '
            'DetDataPreprocessor, mmdet.DetDataPreprocessor)') in proc.stderr, proc.stderr[-3000:]
    assert not osp.exists(marker), 'the payload ran'


def test_speed_tool_refuses_a_planted_file_in_its_model_dir(exported, tmp_path):
    """The speed tool reuses the .onnx files it finds in --model-dir: a planted file with the
    payload is refused (no marker), and so is a valid export of another network."""
    src, meta = exported
    marker = str(tmp_path / 'marker')
    payload = dict(type='subprocess.run',
                   args=[sys.executable, '-c', f'open({marker!r}, "w").close()'])
    model_dir = tmp_path / 'models'
    model_dir.mkdir()
    planted = str(model_dir / 'rpn_r18-w16_tiny_64x64.onnx')  # the name the tool looks for
    _with_meta(src, planted, json.dumps(dict(meta, data_preprocessor=payload)))
    args = [sys.executable, SPEED_TOOL, '--group', 'g', RPN, '--shapes', '64x64', '--threads',
            '1', '--runtimes', 'onnxruntime', '--warmup', '0', '--runs', '1', '--out-dir',
            str(tmp_path / 'speed'), '--model-dir', str(model_dir)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f'{planted}: metadata "mmmimic" key data_preprocessor.type: "subprocess.run" is '
            'not an allowed data preprocessor') in proc.stderr, proc.stderr[-3000:]
    assert not osp.exists(marker), 'the payload ran'
    # a genuine export of the width-8 network under the width-16 model's name
    os.remove(planted)
    other_meta = export_onnx(RPN_W8, None, planted, shape=(64, 64))
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f'{planted} was exported from another network: its model hash '
            f'{other_meta["model_hash"]}') in proc.stderr, proc.stderr[-3000:]
    assert f'differs from the model hash {config_model_hash(RPN)} of {RPN}' in proc.stderr


def _deep(n):
    return '{"config": ' + '[' * n + ']' * n + '}'


@pytest.mark.parametrize('change, fragment', [
    (lambda m: '{"config": ', 'metadata "mmmimic" is not valid JSON: Expecting value at line 1 '
     'column 12'),
    (lambda m: _deep(20000), 'metadata "mmmimic" is nested too deeply'),
    (lambda m: '[1, 2]', 'metadata "mmmimic" must be a JSON object, got [1, 2]'),
    (lambda m: json.dumps(m)[:-1] + ', "kind": "rpn"}', 'key kind: duplicate key'),
    (lambda m: json.dumps(dict(m, hook='x')), 'key hook: unknown key'),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != 'input_shape'}),
     'key input_shape: missing'),
    (lambda m: json.dumps(dict(m, input_scale='0.5')),
     'key input_scale: must be a number in (0, 1], got "0.5"'),
    (lambda m: json.dumps(dict(m, input_scale=True)), 'key input_scale: must be a number'),
    (lambda m: json.dumps(dict(m, input_scale=1e300)), 'key input_scale: must be a number'),
    (lambda m: json.dumps(dict(m, input_shape=[64])), 'key input_shape: must be null or two '
     'integers'),
    (lambda m: json.dumps(dict(m, model_hash='md5:0')), 'key model_hash: must be "sha256:"'),
    (lambda m: json.dumps(dict(m, kind='yolo')), 'key kind: must be one of'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         mean=[1, 2]))),
     'key data_preprocessor.mean: must be null or a list of 1 or 3 finite numbers'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         std=[1, 0, 1]))),
     'key data_preprocessor.std: must be positive'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         std=[1, float('nan'), 1]))),
     'metadata "mmmimic" holds NaN, which is not JSON'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         pad_size_divisor=True))),
     'key data_preprocessor.pad_size_divisor: must be an integer in 1..4096, got true'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(
        m['data_preprocessor'], batch_augments=[dict(type='os.system', command='true')]))),
     'key data_preprocessor.batch_augments: must be null'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         init_cfg=dict(type='Pretrained')))),
     'key data_preprocessor.init_cfg: unknown key'),
    (lambda m: json.dumps(dict(m, data_preprocessor=dict(m['data_preprocessor'],
                                                         type='ScaledInputDataPreprocessor'))),
     'key data_preprocessor.type: "ScaledInputDataPreprocessor" is not an allowed data '
     'preprocessor'),
])
def test_metadata_outside_the_schema_is_refused_naming_file_and_key(exported, tmp_path, change,
                                                                    fragment):
    src, meta = exported
    bad = _with_meta(src, str(tmp_path / 'bad.onnx'), change(meta))
    for read in (read_onnx_meta, lambda f: OnnxDetector(f, device='cpu')):
        with pytest.raises(RefusedOnnxError) as excinfo:
            read(bad)
        assert str(excinfo.value).startswith(f'{bad}: ') and fragment in str(excinfo.value), \
            str(excinfo.value)


def test_two_metadata_entries_are_refused(exported, tmp_path):
    src, _ = exported
    model = onnx.load(src)
    entry = model.metadata_props.add()
    entry.key, entry.value = 'mmmimic', model.metadata_props[0].value
    bad = str(tmp_path / 'two.onnx')
    onnx.save(model, bad)
    with pytest.raises(RefusedOnnxError, match='two.onnx has 2 "mmmimic" metadata entries'):
        read_onnx_meta(bad)


def test_file_preprocessor_is_built_from_the_schema_and_config_preprocessor_wins(exported):
    src, _ = exported
    model = OnnxDetector(src, device='cpu')
    assert type(model.data_preprocessor).__name__ == 'DetDataPreprocessor'
    assert model.data_preprocessor.pad_size_divisor == 16
    assert model.data_preprocessor._channel_conversion is True
    torch.testing.assert_close(model.data_preprocessor.mean.flatten(),
                               torch.tensor([123.675, 116.28, 103.53]))
    given = OnnxDetector(src, device='cpu', data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32))
    assert given.data_preprocessor.pad_size_divisor == 32


# ------------------------------------------------------------------ 2. identity
def test_test_tool_refuses_a_model_of_another_network(exported, tmp_path):
    """A w16 export scored with the w8 config: same preprocessing, scale and input size, so
    the old checks passed and tools/test.py scored it as the w8 model; now both are named."""
    src, meta = exported
    from mmengine.config import Config
    w8 = Config.fromfile(RPN_W8)
    assert w8.model.data_preprocessor == Config.fromfile(RPN).model.data_preprocessor
    other_hash = config_model_hash(RPN_W8)
    assert meta['model_hash'] == config_model_hash(RPN) != other_hash
    assert onnx_test_cfg(Config.fromfile(RPN), src).model.type == 'OnnxDetector'
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/test.py'), RPN_W8, src,
                           '--work-dir', str(tmp_path / 'work')], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f'{src} was exported from another network: its model hash {meta["model_hash"]} '
            f'(exported from {RPN} (RPN)) differs from the model hash {other_hash} of '
            f'{RPN_W8}') in proc.stderr, proc.stderr[-3000:]
    # other test-time settings baked into the graph (NMS) are another network too
    cfg = Config.fromfile(RPN)
    cfg.model.test_cfg.rpn.nms.iou_threshold = 0.5
    with pytest.raises(RefusedOnnxError, match='was exported from another network'):
        onnx_test_cfg(cfg, src)
    # an export that records no hash cannot be checked: refused
    old = dict(meta)
    del old['model_hash']
    legacy = _with_meta(src, str(tmp_path / 'legacy.onnx'), json.dumps(old))
    assert read_onnx_meta(legacy)['model_hash'] is None  # still readable as such
    with pytest.raises(RefusedOnnxError, match=r'legacy.onnx records no model hash .*'
                       r're-export it with tools/deployment/export_onnx.py from .*rpn_r18-w16'):
        onnx_test_cfg(Config.fromfile(RPN), legacy)


# ------------------------------------------------------------------ 3. Loop
def _body(extra_nodes=(), name='body', p=''):
    """A Loop body: passes its condition and the carried float[2] through (names prefixed by
    ``p``: onnxruntime wants every name in the model assigned once)."""
    return helper.make_graph(
        [helper.make_node('Identity', [p + 'cond_in'], [p + 'cond_out']),
         helper.make_node('Identity', [p + 'v_in'], [p + 'v_mid']), *extra_nodes,
         helper.make_node('Identity', [p + ('v_mid' if not extra_nodes else 'v_inner')],
                          [p + 'v_out'])],
        name,
        [helper.make_tensor_value_info(p + 'i', TensorProto.INT64, []),
         helper.make_tensor_value_info(p + 'cond_in', TensorProto.BOOL, []),
         helper.make_tensor_value_info(p + 'v_in', TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(p + 'cond_out', TensorProto.BOOL, []),
         helper.make_tensor_value_info(p + 'v_out', TensorProto.FLOAT, [2])])


def loop_model(meta_text, variant='huge', trips=2**62):
    """A graph with the exporter's inputs, outputs and metadata whose outputs depend on a Loop
    carrying ``img_shape`` (so nothing can be folded away at load)."""
    inits = [numpy_helper.from_array(np.array(trips, dtype=np.int64), 'trips'),
             numpy_helper.from_array(np.array(True), 'cond'),
             numpy_helper.from_array(np.zeros((0, 4), np.float32), 'zeros4'),
             numpy_helper.from_array(np.zeros((0, ), np.float32), 'zeros1'),
             numpy_helper.from_array(np.zeros((0, ), np.int64), 'zerosl')]
    functions, opsets = [], [helper.make_opsetid('', 17)]
    if variant in ('huge', 'bounded'):
        nodes = [helper.make_node('Loop', ['trips', 'cond', 'img_shape'], ['v'], name='spin',
                                  body=_body())]
    elif variant == 'no_trip_count':
        nodes = [helper.make_node('Loop', ['', 'cond', 'img_shape'], ['v'], name='spin',
                                  body=_body())]
    elif variant == 'dynamic':
        nodes = [helper.make_node('ReduceSum', ['img_shape'], ['n_f'], keepdims=0),
                 helper.make_node('Cast', ['n_f'], ['n'], to=TensorProto.INT64),
                 helper.make_node('Loop', ['n', 'cond', 'img_shape'], ['v'], name='spin',
                                  body=_body())]
    elif variant == 'in_if':
        then_g = helper.make_graph(
            [helper.make_node('Loop', ['trips', 'cond', 'img_shape'], ['v_then'], name='spin',
                              body=_body())], 'then', [],
            [helper.make_tensor_value_info('v_then', TensorProto.FLOAT, [2])])
        else_g = helper.make_graph(
            [helper.make_node('Identity', ['img_shape'], ['v_else'])], 'else', [],
            [helper.make_tensor_value_info('v_else', TensorProto.FLOAT, [2])])
        nodes = [helper.make_node('If', ['cond'], ['v'], name='branch', then_branch=then_g,
                                  else_branch=else_g)]
    elif variant == 'nested':  # 200 x 100 steps: each bounded, together too many
        inits.append(numpy_helper.from_array(np.array(100, dtype=np.int64), 'inner_trips'))
        inner = helper.make_node('Loop', ['inner_trips', 'cond', 'v_mid'], ['v_inner'],
                                 name='inner', body=_body(name='inner_body', p='in_'))
        nodes = [helper.make_node('Loop', ['trips', 'cond', 'img_shape'], ['v'], name='outer',
                                  body=_body([inner]))]
    elif variant == 'function':
        loop = helper.make_node('Loop', ['m', 'c', 'x'], ['y'], name='spin', body=_body())
        functions = [helper.make_function('local', 'Spin', ['m', 'c', 'x'], ['y'], [loop],
                                          [helper.make_opsetid('', 17)])]
        opsets.append(helper.make_opsetid('local', 1))
        nodes = [helper.make_node('Spin', ['trips', 'cond', 'img_shape'], ['v'],
                                  domain='local')]
    nodes += [helper.make_node('ReduceSum', ['v'], ['s'], keepdims=0),
              helper.make_node('Add', ['zeros4', 's'], ['boxes']),
              helper.make_node('Add', ['zeros1', 's'], ['scores']),
              helper.make_node('Identity', ['zerosl'], ['labels'])]
    graph = helper.make_graph(
        nodes, 'hostile',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 64, 64]),
         helper.make_tensor_value_info('img_shape', TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info('scale_factor', TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [0, 4]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT, [0]),
         helper.make_tensor_value_info('labels', TensorProto.INT64, [0])], inits)
    model = helper.make_model(graph, opset_imports=opsets, functions=functions)
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = 'mmmimic', meta_text
    return model


RUN_RAW = ('import sys, numpy as np, onnxruntime as ort\n'
           's = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])\n'
           'print("SESSION", flush=True)\n'
           's.run(None, dict(image=np.zeros((1, 3, 64, 64), np.float32), '
           'img_shape=np.array([64, 64], np.float32), scale_factor=np.ones(2, np.float32)))\n'
           'print("FINISHED")\n')
PREDICT = LOAD + ('import torch\nfrom mmdet.structures import DetDataSample\n'
                  'm = OnnxDetector(sys.argv[1], device="cpu")\n'
                  's = [DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1., 1.)))]\n'
                  'm.predict(torch.zeros(1, 3, 64, 64), s)\nprint("PREDICTED")\n')


def test_loop_of_2_62_steps_hangs_onnxruntime_and_is_refused_at_load(exported, tmp_path):
    src, meta = exported
    hostile = str(tmp_path / 'spin.onnx')
    model = loop_model(json.dumps(meta))
    onnx.checker.check_model(model)
    onnx.save(model, hostile)
    # full trust: onnxruntime loads it and never finishes a run (killed after 5 s)
    with pytest.raises(subprocess.TimeoutExpired) as excinfo:
        _python(RUN_RAW, hostile, timeout=5)
    assert b'SESSION' in (excinfo.value.stdout or b'') and b'FINISHED' not in \
        (excinfo.value.stdout or b'')
    # the runtime refuses it at load, well inside the time limit (imports included)
    start = time.monotonic()
    proc = _python(PREDICT, hostile, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0 and 'PREDICTED' not in proc.stdout and 'LOADED' not in proc.stdout
    assert (f'RefusedOnnxError: {hostile}: Loop node "spin" runs 4611686018427387904 steps, '
            f'more than the {MAX_LOOP_TRIPS} allowed') in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 60, elapsed


@pytest.mark.parametrize('variant, fragment', [
    ('no_trip_count', 'Loop node "spin" has no trip count: it runs until its condition turns '
     'false'),
    ('dynamic', "Loop node \"spin\" has a trip count ('n') computed at run time"),
    ('in_if', 'Loop node "spin" in If branch.then_branch runs 4611686018427387904 steps'),
    ('nested', 'Loop node "inner" in Loop outer.body runs 100 steps (200 times, inside other '
     'loops), more than the 10000 allowed'),
    ('function', 'Loop node "spin" in the model-local function local.Spin'),
])
def test_unbounded_loops_anywhere_are_refused(exported, tmp_path, variant, fragment):
    src, meta = exported
    path = str(tmp_path / f'{variant}.onnx')
    onnx.save(loop_model(json.dumps(meta), variant, trips=200 if variant == 'nested' else 2**62),
              path)
    with pytest.raises(RefusedOnnxError) as excinfo:
        OnnxDetector(path, device='cpu')
    assert str(excinfo.value).startswith(f'{path}: ') and fragment in str(excinfo.value), \
        str(excinfo.value)


def test_a_small_constant_loop_runs(exported, tmp_path):
    from mmdet.structures import DetDataSample
    src, meta = exported
    path = str(tmp_path / 'bounded.onnx')
    onnx.save(loop_model(json.dumps(meta), 'bounded', trips=3), path)
    model = OnnxDetector(path, device='cpu')
    samples = [DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1., 1.)))]
    assert len(model.predict(torch.zeros(1, 3, 64, 64), samples)[0].pred_instances) == 0


def test_other_graphs_and_external_data_are_refused(exported, tmp_path):
    src, meta = exported
    model = onnx.load(src)
    model.graph.output[2].name = 'extra'
    model.graph.node[-1].output[0] = 'extra'
    path = str(tmp_path / 'io.onnx')
    onnx.save(model, path)
    with pytest.raises(RefusedOnnxError, match=r"io.onnx: the graph takes \['image', "
                       r"'img_shape', 'scale_factor'\] and gives \['boxes', 'scores', 'extra'\]"):
        OnnxDetector(path, device='cpu')
    model = onnx.load(src)
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    name = tensor.name
    del tensor.external_data[:]
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = 'location', '../../etc/passwd'
    tensor.ClearField('raw_data')
    path = str(tmp_path / 'external.onnx')
    onnx.save(model, path)
    with pytest.raises(RefusedOnnxError, match=f'external.onnx: tensor "{name}" keeps its data '
                       r"in an external file \('../../etc/passwd'\)"):
        OnnxDetector(path, device='cpu')


# ------------------------------------------------------------------ 4. --out replaced
def test_export_refuses_an_existing_out_without_overwrite(reference, tmp_path):
    _, config, ckpt = reference('rpn')
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'a user\'s file')
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/deployment/export_onnx.py'),
                           config, ckpt, '--out', str(out), '--shape', '64', '64'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f'--out file {out} already exists; pass --overwrite to replace it' in proc.stderr
    assert out.read_bytes() == b'a user\'s file' and os.listdir(tmp_path) == ['model.onnx']
    with pytest.raises(FileExistsError, match='already exists; pass --overwrite'):
        export_onnx(config, ckpt, str(out), shape=(64, 64))
    meta = export_onnx(config, ckpt, str(out), shape=(64, 64), overwrite=True)
    assert read_onnx_meta(str(out)) == meta and os.listdir(tmp_path) == ['model.onnx']


@pytest.mark.parametrize('existing', [False, True])
def test_ctrl_c_during_export_leaves_no_partial_file(reference, tmp_path, monkeypatch, existing):
    _, config, ckpt = reference('rpn')
    out = tmp_path / 'model.onnx'
    if existing:
        out.write_bytes(b'before')

    def interrupted(module, args, path, **kwargs):
        with open(path, 'wb') as fh:
            fh.write(b'half a graph')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, 'export', interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(config, ckpt, str(out), shape=(64, 64), overwrite=existing)
    assert os.listdir(tmp_path) == (['model.onnx'] if existing else [])
    if existing:
        assert out.read_bytes() == b'before'
