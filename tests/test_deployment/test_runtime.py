"""OnnxDetector in mmengine's test loop: tools/test.py scores an .onnx with the Caltech metric
exactly as it scores the PyTorch checkpoint it was exported from."""
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from deploy_utils import ROOT, SKIP_REASON

pytest.importorskip('onnx', reason=SKIP_REASON)
pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from mmmimic.datasets import caltech_converter as converter  # noqa: E402
from mmmimic.datasets import caltech_io  # noqa: E402
from mmmimic.deployment import OnnxDetector, export_onnx, load_detector  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/inception/rpn_inception-1-2_1xb2-40k_caltech-480x640.py')


def _frame(i, rng):
    """A 640x480 JPEG: textured background and a few dark upright 'pedestrians'."""
    tex = rng.integers(110, 210, size=(82, 109, 3)).astype(np.uint8)
    img = cv2.resize(tex, (640, 480), interpolation=cv2.INTER_CUBIC)
    for x, y, h in ((100 + 7 * i, 120, 110), (400, 200 - i, 70), (520, 90, 160)):
        w = int(0.41 * h)
        cv2.rectangle(img, (x, y + h // 5), (x + w, y + h), (30, 35, 40), -1)
        cv2.circle(img, (x + w // 2, y + h // 10), w // 3, (30, 35, 40), -1)
    return cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope='module')
def caltech_root(tmp_path_factory):
    """A converted mini Caltech test split (set06, frames 29 and 59 of two videos)."""
    src = str(tmp_path_factory.mktemp('release'))
    out = str(tmp_path_factory.mktemp('caltech'))
    rng = np.random.default_rng(0)
    jpgs = [_frame(i, rng) for i in range(60)]
    for v in (0, 1):
        caltech_io.write_seq(osp.join(src, 'set06', f'V{v:03d}.seq'), jpgs, 640, 480)
        frames = [[] for _ in range(60)]
        for f in (29, 59):
            frames[f] = [dict(id=1, lbl='person', pos=[100 + 7 * f, 120, 45, 110],
                              posv=[0, 0, 0, 0], occl=0),
                         dict(id=2, lbl='person', pos=[520, 90, 65, 160], posv=[0, 0, 0, 0],
                              occl=0)]
        caltech_io.write_vbb(osp.join(src, 'annotations', 'set06', f'V{v:03d}.vbb'), frames)
    converter.convert_caltech(src, out, ['test'], progress=False)
    return out + '/'


def _test_tool(checkpoint, data_root, work_dir, dump):
    env = dict(os.environ)
    args = [sys.executable, osp.join(ROOT, 'tools/test.py'), CONFIG, checkpoint, '--work-dir',
            work_dir, '--out', dump, '--cfg-options', f'test_dataloader.dataset.data_root='
            f'{data_root}', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', 'test_evaluator.plot=False']
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    mr2 = re.findall(r'caltech/Reasonable_MR-2: ([0-9.]+)', out)
    assert mr2, out[-3000:]
    with open(dump, 'rb') as f:
        return float(mr2[-1]), pickle.load(f)


def test_test_tool_scores_onnx_like_the_checkpoint(caltech_root, tmp_path):
    torch.manual_seed(0)
    detector, _, _ = load_detector(CONFIG, None)
    detector.init_weights()  # the training start point: trained-like activation scales
    ckpt = str(tmp_path / 'student.pth')
    torch.save({'state_dict': detector.state_dict()}, ckpt)
    onnx_file = str(tmp_path / 'student.onnx')
    export_onnx(CONFIG, ckpt, onnx_file, shape=(480, 640))
    mr2_torch, dets_torch = _test_tool(ckpt, caltech_root, str(tmp_path / 'wt'),
                                       str(tmp_path / 'torch.pkl'))
    mr2_onnx, dets_onnx = _test_tool(onnx_file, caltech_root, str(tmp_path / 'wo'),
                                     str(tmp_path / 'onnx.pkl'))
    assert len(dets_torch) == len(dets_onnx) == 4
    for a, b in zip(dets_torch, dets_onnx):
        assert a['img_id'] == b['img_id']
        pa, pb = a['pred_instances'], b['pred_instances']
        assert len(pa['bboxes']) == len(pb['bboxes']) > 0
        # Inception at 480x640: float32 noise of the box deltas (~5e-6, PyTorch's own float32
        # deviates as much from float64) times box sizes of up to 640 px; see
        # docs/user_guides/deployment.md. The tiny models of test_export.py meet 1e-3 px.
        np.testing.assert_allclose(pb['bboxes'].numpy(), pa['bboxes'].numpy(), atol=1e-3,
                                   rtol=2e-5)
        np.testing.assert_allclose(pb['scores'].numpy(), pa['scores'].numpy(), atol=1e-4, rtol=0)
    assert abs(mr2_onnx - mr2_torch) <= 0.05


def test_onnx_detector_is_a_detector_in_predict_mode_only(tmp_path):
    config = osp.join(ROOT, 'mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py')
    out = str(tmp_path / 'm.onnx')
    export_onnx(config, None, out, shape=(64, 64))
    model = OnnxDetector(out, device='cpu')
    assert model.meta['input_shape'] == [64, 64]
    assert type(model.data_preprocessor).__name__ == 'DetDataPreprocessor'
    assert model.data_preprocessor.pad_size_divisor == 16
    with pytest.raises(NotImplementedError, match='cannot be trained'):
        model.loss(torch.zeros(1, 3, 64, 64), [])
    with pytest.raises(NotImplementedError, match='predict mode'):
        model(torch.zeros(1, 3, 64, 64), None, mode='tensor')
    from mmdet.structures import DetDataSample
    samples = [DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1., 1.)))
               for _ in range(2)]
    preds = model.predict(torch.randn(2, 3, 64, 64), samples)  # a batch: one run per image
    assert [len(p.pred_instances) > 0 for p in preds] == [True, True]
