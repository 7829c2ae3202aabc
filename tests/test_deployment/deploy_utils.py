"""Helpers of the deployment tests: tiny detectors with saved weights, frames, comparisons."""
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmmimic.models.distillers.cross_scale import resize_batch
from mmmimic.testing import make_tiny_coco
from mmmimic.testing.mmdet_tiny import MMDET_TINY, write_mmdet_tiny

#: Why the tests of this folder skip without the optional deploy extra.
SKIP_REASON = ('ONNX tests need the deploy extra: bash tools/install.sh --deploy '
               '(pip install "mmmimic[deploy]")')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = {
    'rpn': 'mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py',
    'rfcn': 'mmmimic/testing/configs/stage2/rfcn_r18-w16_tiny.py',
    'faster_rcnn': 'mmmimic/testing/configs/stage2/faster-rcnn_r18-w16_tiny.py',
    'cross_scale': 'mmmimic/testing/configs/cross_scale/rpn_r18-w8-deconv_mimic_tiny.py',
}
TEACHER = 'mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py'


def build_reference(kind: str, tmp_dir: str) -> Tuple[torch.nn.Module, str, str]:
    """The PyTorch model of ``kind`` (a :data:`TINY` fixture, or a tiny mmdet config of
    :data:`~mmmimic.testing.mmdet_tiny.MMDET_TINY`) with seeded random weights, saved as a
    checkpoint.

    For ``cross_scale`` this is the whole ``FeatureMimicDistiller`` (teacher weights saved and
    loaded too): its ``predict`` (student on the half-size input) is the reference, and the
    checkpoint is the distiller's, as training writes it.

    Returns:
        ``(model in eval mode, config path, checkpoint path)``.
    """
    init_default_scope('mmdet')
    config = write_mmdet_tiny(kind, tmp_dir) if kind in MMDET_TINY else osp.join(ROOT, TINY[kind])
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    if kind == 'cross_scale':
        teacher = MODELS.build(Config.fromfile(osp.join(ROOT, TEACHER)).model)
        teacher_ckpt = osp.join(tmp_dir, 'teacher.pth')
        torch.save({'state_dict': teacher.state_dict()}, teacher_ckpt)
        cfg.model.teacher_ckpt = teacher_ckpt
    model = MODELS.build(cfg.model).eval()
    ckpt = osp.join(tmp_dir, f'{kind}.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return model, config, ckpt


def frames(kind: str, size: Tuple[int, int], seed: int) -> List[np.ndarray]:
    """Test frames (BGR uint8 HxWx3): 'random' noise, or 'scene' images of drawn pedestrians on
    a textured background (:func:`make_tiny_coco`)."""
    h, w = size
    if kind == 'random':
        rng = np.random.default_rng(seed)
        return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        info = make_tiny_coco(root, num_images=2, img_size=(h, w), max_objects=4, seed=seed,
                              split='scene')
        names = sorted(os.listdir(osp.join(root, info['img_prefix'])))
        return [cv2.imread(osp.join(root, info['img_prefix'], n)) for n in names]


def preprocess(model: torch.nn.Module, frame: np.ndarray,
               scale_factor=(1.25, 1.25)) -> Dict[str, object]:
    """The model's data preprocessor on one frame; the frame is declared resized by
    ``scale_factor`` from an original, so that predictions are rescaled as in a test loop."""
    h, w = frame.shape[:2]
    meta = dict(img_shape=(h, w), scale_factor=tuple(scale_factor),
                ori_shape=(round(h / scale_factor[1]), round(w / scale_factor[0])))
    img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
    return model.data_preprocessor(dict(inputs=[img], data_samples=[DetDataSample(
        metainfo=meta)]), False)


def torch_predict(model: torch.nn.Module, data: dict, input_scale: float = 1.0):
    """``pred_instances`` of the PyTorch model (an exported plain student with an input scale
    is compared with predict on the resized batch, exactly what its distiller does)."""
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        if input_scale != 1.0:
            inputs, samples = resize_batch(inputs, samples, input_scale)
        return model.predict(inputs, samples, rescale=True)[0].pred_instances


def compare(onnx_pred, torch_pred) -> Tuple[float, float]:
    """Assert equal detections (count, boxes to 1e-3 px, scores to 1e-4, labels); return the
    largest box and score differences."""
    assert len(onnx_pred) == len(torch_pred), (len(onnx_pred), len(torch_pred))
    assert len(torch_pred) > 0, 'no detections: the comparison would be empty'
    box_diff = (onnx_pred.bboxes - torch_pred.bboxes).abs().max().item()
    score_diff = (onnx_pred.scores - torch_pred.scores).abs().max().item()
    assert box_diff < 1e-3, box_diff
    assert score_diff < 1e-4, score_diff
    assert torch.equal(onnx_pred.labels.long(), torch_pred.labels.long())
    return box_diff, score_diff
