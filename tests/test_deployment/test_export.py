"""Exported graphs equal PyTorch's predict: same count, boxes to 1e-3 px, scores to 1e-4."""
import os

import pytest
import torch
from deploy_utils import SKIP_REASON, compare, frames, preprocess, torch_predict

pytest.importorskip('onnx', reason=SKIP_REASON)
pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from mmmimic.deployment import (OnnxDetector, export_onnx, load_detector,  # noqa: E402
                                read_onnx_meta)

KINDS = ['rpn', 'rfcn', 'faster_rcnn', 'cross_scale']


@pytest.mark.parametrize('kind', KINDS)
def test_static_export_equals_pytorch(kind, reference, tmp_path):
    model, config, ckpt = reference(kind)
    out = str(tmp_path / f'{kind}.onnx')
    meta = export_onnx(config, ckpt, out, shape=(96, 128))
    assert meta['input_shape'] == [96, 128]
    assert meta['input_scale'] == (0.5 if kind == 'cross_scale' else 1.0)
    assert meta['kind'] == {'rfcn': 'rfcn', 'faster_rcnn': 'faster_rcnn'}.get(kind, 'rpn')
    assert read_onnx_meta(out) == meta
    assert os.listdir(tmp_path) == [f'{kind}.onnx']  # no temp file left
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    diffs = []
    for image_kind, size in (('random', (90, 120)), ('scene', (96, 128))):
        for seed in (0, 1):
            for frame in frames(image_kind, size, seed):
                data = preprocess(model, frame)
                assert tuple(data['inputs'].shape[-2:]) == (96, 128)
                onnx_pred = onnx_model.predict(data['inputs'],
                                               data['data_samples'])[0].pred_instances
                diffs.append(compare(onnx_pred, torch_predict(model, preprocess(model, frame))))
    print(f'{kind}: max box diff {max(d[0] for d in diffs):.2e} px, '
          f'max score diff {max(d[1] for d in diffs):.2e}')


@pytest.mark.parametrize('kind', KINDS)
def test_dynamic_export_equals_pytorch_at_several_sizes(kind, reference, tmp_path):
    model, config, ckpt = reference(kind)
    out = str(tmp_path / f'{kind}.onnx')
    meta = export_onnx(config, ckpt, out)  # no --shape: dynamic, traced at 320x448
    assert meta['input_shape'] is None
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    for size in ((64, 64), (150, 200), (96, 128)):
        for frame in frames('scene', size, seed=3):
            data = preprocess(model, frame, scale_factor=(0.8, 0.75))
            onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
            compare(onnx_pred, torch_predict(model, preprocess(model, frame, (0.8, 0.75))))


def test_rescale_false_gives_input_pixels(reference, tmp_path):
    model, config, ckpt = reference('rfcn')
    out = str(tmp_path / 'rfcn.onnx')
    export_onnx(config, ckpt, out)
    onnx_model = OnnxDetector(out, device='cpu')
    frame = frames('scene', (96, 128), seed=0)[0]
    data = preprocess(model, frame, scale_factor=(2.0, 2.0))
    scaled = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    data = preprocess(model, frame, scale_factor=(2.0, 2.0))
    raw = onnx_model.predict(data['inputs'], data['data_samples'],
                             rescale=False)[0].pred_instances
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'], rescale=False)[0].pred_instances
    compare(raw, ref)
    torch.testing.assert_close(raw.bboxes / 2, scaled.bboxes, atol=1e-4, rtol=0)


def test_nms_pre_below_anchor_count_in_dynamic_graph(tmp_path):
    """nms_pre (the RPN's top-k before NMS) applies where an input has more anchors than it and
    not where it has fewer, in one dynamic graph."""
    from deploy_utils import ROOT, build_reference
    config = tmp_path / 'rpn_nms_pre.py'
    config.write_text(f"_base_ = ['{ROOT}/mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py']\n"
                      'model = dict(test_cfg=dict(rpn=dict(nms_pre=40)))\n')
    from deploy_utils import TINY
    TINY['rpn_nms_pre'] = str(config)
    try:
        model, config_path, ckpt = build_reference('rpn_nms_pre', str(tmp_path))
    finally:
        del TINY['rpn_nms_pre']
    assert model.bbox_head.test_cfg.nms_pre == 40
    out = str(tmp_path / 'm.onnx')
    export_onnx(config_path, ckpt, out, shape=(64, 64), dynamic=True)
    onnx_model = OnnxDetector(out, device='cpu')
    counts = []
    for size in ((32, 48), (96, 128)):  # 2x3x6 = 36 and 6x8x6 = 288 anchors
        frame = frames('scene', size, seed=1)[0]
        data = preprocess(model, frame)
        onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
        compare(onnx_pred, torch_predict(model, preprocess(model, frame)))
        counts.append(len(onnx_pred))
    assert counts[1] <= 40


def _raw_batch(frame, scale_factor=(1.25, 1.25)):
    """A test dataloader's batch of one uint8 frame (what tools/test.py feeds test_step)."""
    import numpy as np
    from mmdet.structures import DetDataSample
    h, w = frame.shape[:2]
    img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), scale_factor=scale_factor,
                                         ori_shape=(round(h / scale_factor[1]),
                                                    round(w / scale_factor[0]))))
    return dict(inputs=[img], data_samples=[sample])


def test_extracted_cross_scale_student_carries_its_input_scale(reference, tmp_path):
    """extract_student.py gives the cross-scale student a ScaledInputDataPreprocessor: its
    export needs no --input-scale, the graph resizes (the runtime does not resize again), and
    the detections equal the distiller's on full-size frames, through the test-config route
    tools/test.py takes."""
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from mmmimic.apis import extract_student
    from mmmimic.deployment import onnx_test_cfg
    model, config, ckpt = reference('cross_scale')
    cfg_path, student_ckpt = extract_student(config, ckpt, str(tmp_path / 'student'))
    assert Config.fromfile(cfg_path).model.data_preprocessor.type == \
        'ScaledInputDataPreprocessor'
    out = str(tmp_path / 'student.onnx')
    meta = export_onnx(cfg_path, student_ckpt, out, shape=(96, 128))  # no input_scale
    assert meta['model'] == 'RPN' and meta['input_scale'] == 0.5
    assert meta['data_preprocessor']['type'] == 'DetDataPreprocessor'
    assert 'input_scale' not in meta['data_preprocessor']
    onnx_model = OnnxDetector(out, device='cpu')
    diffs = []
    for seed in (2, 3):
        frame = frames('scene', (96, 128), seed=seed)[0]
        data = preprocess(model, frame)
        onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
        diffs.append(compare(onnx_pred, torch_predict(model, preprocess(model, frame))))
    # the test-config route: the extracted config with the .onnx in place of the checkpoint
    test_model = MODELS.build(onnx_test_cfg(Config.fromfile(cfg_path), out).model)
    assert type(test_model.data_preprocessor).__name__ == 'DetDataPreprocessor'
    frame = frames('scene', (90, 120), seed=4)[1]  # padded to 96x128 by the preprocessor
    with torch.no_grad():
        expected = model.test_step(_raw_batch(frame))[0].pred_instances
    compare(test_model.test_step(_raw_batch(frame))[0].pred_instances, expected)
    # an explicit --input-scale may repeat the recorded scale, not contradict it
    assert export_onnx(cfg_path, student_ckpt, out, shape=(96, 128), input_scale=0.5,
                       overwrite=True)['input_scale'] == 0.5
    for wrong in (1.0, 0.25):
        with pytest.raises(ValueError, match=rf'--input-scale {wrong} contradicts the input '
                           r'scale 0.5 that .*student.py records'):
            export_onnx(cfg_path, student_ckpt, out, shape=(96, 128), input_scale=wrong,
                        overwrite=True)


def test_student_without_a_recorded_scale_takes_input_scale(reference, tmp_path):
    """A cross-scale student config with a plain DetDataPreprocessor (extracted before it kept
    its scale) still exports with --input-scale 0.5 and equals the distiller's predict."""
    from mmengine.config import Config

    from mmmimic.apis import extract_student
    model, config, ckpt = reference('cross_scale')
    cfg_path, student_ckpt = extract_student(config, ckpt, str(tmp_path / 'student'))
    cfg = Config.fromfile(cfg_path)
    cfg.model.data_preprocessor.type = 'DetDataPreprocessor'
    cfg.model.data_preprocessor.pop('input_scale')
    plain_path = str(tmp_path / 'plain_student.py')
    cfg.dump(plain_path)
    _, _, scale = load_detector(plain_path, student_ckpt)
    assert scale == 1.0  # nothing recorded: the full-size network unless told
    out = str(tmp_path / 'student.onnx')
    meta = export_onnx(plain_path, student_ckpt, out, shape=(96, 128), input_scale=0.5)
    assert meta['input_scale'] == 0.5
    onnx_model = OnnxDetector(out, device='cpu')
    frame = frames('scene', (96, 128), seed=2)[0]
    data = preprocess(model, frame)
    onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    compare(onnx_pred, torch_predict(model, preprocess(model, frame)))


def test_fast_exact_rpn_head_exports_as_rpn_head(reference, tmp_path):
    """A detector with FastExactRPNHead (RPNHead's layers) takes the RPN route and reads an
    RPNHead checkpoint; its graph equals the plain head's PyTorch predict."""
    model, config, ckpt = reference('rpn')
    fast_config = tmp_path / 'fast.py'
    fast_config.write_text(f"_base_ = ['{config}']\n"
                           "model = dict(rpn_head=dict(type='FastExactRPNHead'))\n")
    out = str(tmp_path / 'fast.onnx')
    assert export_onnx(str(fast_config), ckpt, out, shape=(96, 128))['kind'] == 'rpn'
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    for frame in frames('scene', (96, 128), 0):
        data = preprocess(model, frame)
        onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
        compare(onnx_pred, torch_predict(model, preprocess(model, frame)))
