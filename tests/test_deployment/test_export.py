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
    config.write_text(f"_base_ = ['{ROOT}/configs/mimic/tiny/rpn_r18-w16_tiny.py']\n"
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


def test_extracted_cross_scale_student_with_input_scale(reference, tmp_path):
    """A plain student config (as extract_student.py writes it) exported with --input-scale 0.5
    equals the distiller's predict."""
    from mmmimic.apis import extract_student
    model, config, ckpt = reference('cross_scale')
    cfg_path, student_ckpt = extract_student(config, ckpt, str(tmp_path / 'student'))
    out = str(tmp_path / 'student.onnx')
    meta = export_onnx(cfg_path, student_ckpt, out, shape=(96, 128), input_scale=0.5)
    assert meta['model'] == 'RPN' and meta['input_scale'] == 0.5
    onnx_model = OnnxDetector(out, device='cpu')
    frame = frames('scene', (96, 128), seed=2)[0]
    data = preprocess(model, frame)
    onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    compare(onnx_pred, torch_predict(model, preprocess(model, frame)))
    # the same student without the resize is a different detector
    student, _, scale = load_detector(cfg_path, student_ckpt)
    assert scale == 1.0
