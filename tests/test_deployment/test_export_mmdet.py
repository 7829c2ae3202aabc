"""mmdet's own FPN and one-stage detectors (tiny configs through ``mmdet::``) export to ONNX: the
graph's detections equal PyTorch's predict at several input sizes, and tools/test.py scores the
.onnx as it scores the checkpoint on tiny COCO data."""
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
import torch
from deploy_utils import ROOT, SKIP_REASON, frames, preprocess, torch_predict

pytest.importorskip('onnx', reason=SKIP_REASON)
pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from mmmimic.deployment import OnnxDetector, export_onnx, read_onnx_meta  # noqa: E402
from mmmimic.testing import tiny_coco_overrides  # noqa: E402
from mmmimic.testing.mmdet_tiny import match_detections, write_mmdet_tiny  # noqa: E402

#: tiny mmdet configs -> the export route they take
ROUTES = {'fpn_faster_rcnn': 'faster_rcnn', 'fpn_rpn': 'rpn', 'retinanet': 'one_stage',
          'atss': 'one_stage', 'fcos': 'one_stage'}


@pytest.mark.parametrize('kind', sorted(ROUTES))
def test_dynamic_export_equals_pytorch(kind, reference, tmp_path, single_torch_thread):
    """One dynamic graph, frames of four sizes (up to 320x448, where FPN Faster R-CNN pools its
    proposals on three pyramid levels), a non-unit scale factor: the same detections."""
    model, config, ckpt = reference(kind)
    out = str(tmp_path / f'{kind}.onnx')
    meta = export_onnx(config, ckpt, out)
    assert meta['kind'] == ROUTES[kind] and meta['input_shape'] is None
    assert read_onnx_meta(out) == meta
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    labels, diffs = set(), []
    for image_kind, size in (('random', (90, 120)), ('scene', (64, 64)), ('scene', (150, 200)),
                             ('scene', (320, 448))):
        for frame in frames(image_kind, size, seed=3):
            data = preprocess(model, frame, scale_factor=(0.8, 0.75))
            onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
            torch_pred = torch_predict(model, preprocess(model, frame, (0.8, 0.75)))
            diffs.append(match_detections(onnx_pred, torch_pred))
            labels |= set(torch_pred.labels.tolist())
    # the class-wise NMS and labels are exercised (3 classes; an RPN has one)
    assert labels == ({0} if kind == 'fpn_rpn' else {0, 1, 2})
    print(f'{kind}: max box diff {max(d[0] for d in diffs):.2e} px, '
          f'max score diff {max(d[1] for d in diffs):.2e}')


@pytest.mark.parametrize('kind', ['fpn_faster_rcnn', 'retinanet'])
def test_static_export_equals_pytorch(kind, reference, tmp_path, single_torch_thread):
    model, config, ckpt = reference(kind)
    out = str(tmp_path / f'{kind}.onnx')
    assert export_onnx(config, ckpt, out, shape=(96, 128))['input_shape'] == [96, 128]
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    for frame in frames('scene', (96, 128), seed=0) + frames('random', (90, 120), seed=1):
        data = preprocess(model, frame)
        onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
        match_detections(onnx_pred, torch_predict(model, preprocess(model, frame)))


def test_fpn_rpn_proposals_reach_three_levels(reference):
    """The frames of the FPN test reach the multi-level RoI extractor's scatter: at 320x448 the
    proposals go to levels 0, 1 and 2 (finest_scale 56)."""
    from mmmimic.deployment import DeployableDetector
    model, _, _ = reference('fpn_faster_rcnn')
    graph = DeployableDetector(model).eval()
    data = preprocess(model, frames('scene', (320, 448), seed=3)[0], (0.8, 0.75))
    with torch.no_grad():
        props, _ = graph.rpn_proposals(model.extract_feat(data['inputs']),
                                       torch.tensor([320., 448.]), None)
    rois = torch.cat([props.new_zeros(len(props), 1), props], dim=1)
    levels = model.roi_head.bbox_roi_extractor.map_roi_levels(rois, 4)
    assert set(levels.tolist()) == {0, 1, 2}


def _test_tool(checkpoint, config, data_root, work_dir, dump):
    opts = [f'{k}={v}' for k, v in tiny_coco_overrides(data_root).items()]
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/test.py'), config, checkpoint,
                           '--work-dir', work_dir, '--out', dump, '--cfg-options', *opts],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    scores = dict(re.findall(r'(coco/bbox_mAP\w*): (-?[0-9.]+)', out))
    assert len(scores) == 6, out[-3000:]
    with open(dump, 'rb') as f:
        return scores, pickle.load(f)


@pytest.mark.parametrize('kind', ['fpn_faster_rcnn', 'retinanet'])
def test_test_tool_scores_onnx_like_the_checkpoint(kind, tiny_coco, tmp_path):
    """tools/test.py CONFIG model.onnx on tiny COCO: the COCO scores and every image's
    detections equal those of tools/test.py CONFIG checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    config = write_mmdet_tiny(kind, str(tmp_path), tiny_coco=True)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    onnx_file = str(tmp_path / 'model.onnx')
    export_onnx(config, ckpt, onnx_file)
    score_torch, dets_torch = _test_tool(ckpt, config, tiny_coco, str(tmp_path / 'wt'),
                                         str(tmp_path / 'torch.pkl'))
    score_onnx, dets_onnx = _test_tool(onnx_file, config, tiny_coco, str(tmp_path / 'wo'),
                                       str(tmp_path / 'onnx.pkl'))
    assert score_onnx == score_torch
    assert float(score_torch['coco/bbox_mAP_50']) > 0  # some detections hit a person
    assert len(dets_torch) == len(dets_onnx) == 6
    for a, b in zip(dets_torch, dets_onnx):
        assert a['img_id'] == b['img_id']
        match_detections(b['pred_instances'], a['pred_instances'])
    print(f'{kind}: {score_torch}')


def test_a_frame_without_detections_gives_an_empty_result(tmp_path):
    """RetinaNet with its classification biases lowered by 3.8: the export's tracing frame
    (noise) has scores above score_thr, a flat grey frame has none; the graph returns no
    detection there, as predict does (no reshape of zero boxes fails)."""
    import numpy as np
    from deploy_utils import build_reference

    from mmmimic.deployment import DeployableDetector
    from mmmimic.deployment.export import TRACE_SHAPE, example_inputs
    model, config, _ = build_reference('retinanet', str(tmp_path))
    with torch.no_grad():
        model.bbox_head.retina_cls.bias -= 3.8
    ckpt = str(tmp_path / 'low_bias.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    with torch.no_grad():
        traced = DeployableDetector(model).eval()(*example_inputs(TRACE_SHAPE))
    assert len(traced[0]) > 0  # the graph is traced with detections
    out = str(tmp_path / 'low_bias.onnx')
    export_onnx(config, ckpt, out)
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    flat = np.full((96, 128, 3), 128, dtype=np.uint8)
    data = preprocess(model, flat)
    onnx_pred = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert len(torch_predict(model, preprocess(model, flat))) == 0
    assert len(onnx_pred) == 0 and onnx_pred.bboxes.shape == (0, 4)
