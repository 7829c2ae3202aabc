"""Bad input fails with a message naming the cause, and leaves no .onnx behind."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from deploy_utils import ROOT, SKIP_REASON, frames, preprocess

pytest.importorskip('onnx', reason=SKIP_REASON)
pytest.importorskip('onnxruntime', reason=SKIP_REASON)

from mmmimic.deployment import (NoOnnxRouteError, OnnxDetector, export_onnx,  # noqa: E402
                                read_onnx_meta)


def _files(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize('kind, message', [
    ('gfl', r'GFL: one-stage head GFLHead has no ONNX route \(one-stage heads with a route: '
            r'RetinaHead, AnchorHead, ATSSHead, FCOSHead; .*\); supported: RPN .*RetinaNet'),
    ('mask_rcnn', r'MaskRCNN: StandardRoIHead with a mask head has no ONNX route; supported: '
                  r'RPN .*FPN levels')])
def test_model_without_onnx_route(kind, message, tmp_path):
    from mmmimic.testing.mmdet_tiny import write_mmdet_tiny
    config = write_mmdet_tiny(kind, str(tmp_path))
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(NoOnnxRouteError, match=message):
        export_onnx(config, None, str(out / 'm.onnx'))
    assert _files(out) == []


def test_unsupported_nms_fails_during_export_and_leaves_nothing(tmp_path):
    config = tmp_path / 'soft_nms.py'
    config.write_text(f"_base_ = ['{ROOT}/mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py']\n"
                      "model = dict(test_cfg=dict(rpn=dict(nms=dict(type='soft_nms', "
                      'iou_threshold=0.7))))\n')
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(NoOnnxRouteError, match="nms type 'soft_nms' has no ONNX route"):
        export_onnx(str(config), None, str(out / 'm.onnx'), shape=(64, 64))
    assert _files(out) == []  # neither the .onnx nor its temp file


def test_checkpoint_of_another_model(reference, tmp_path):
    _, _, rpn_ckpt = reference('rpn')
    rfcn_config = osp.join(ROOT, 'mmmimic/testing/configs/stage2/rfcn_r18-w16_tiny.py')
    with pytest.raises(RuntimeError, match=r'does not match the model of .*rfcn_r18-w16_tiny'
                       r'[\s\S]*missing in checkpoint \(\d+\): \[.roi_head'):
        export_onnx(rfcn_config, rpn_ckpt, str(tmp_path / 'm.onnx'))
    assert _files(tmp_path) == []


def test_checkpoint_with_other_shapes(reference, tmp_path):
    _, _, ckpt = reference('rpn')  # base width 16; the scratch student has width 8
    config = osp.join(ROOT, 'mmmimic/testing/configs/mimic/rpn_r18-w8_scratch_tiny.py')
    with pytest.raises(RuntimeError, match=r'shape mismatch \(79\): [\s\S]*backbone.conv1.weight: '
                       r'checkpoint \(16, 3, 7, 7\) vs model \(8, 3, 7, 7\)'):
        export_onnx(config, ckpt, str(tmp_path / 'm.onnx'))


def test_missing_files_and_folders(reference, tmp_path):
    _, config, ckpt = reference('rpn')
    with pytest.raises(FileNotFoundError, match='output folder does not exist: .*no_such_dir'):
        export_onnx(config, ckpt, str(tmp_path / 'no_such_dir' / 'm.onnx'))
    assert not osp.exists(tmp_path / 'no_such_dir')
    with pytest.raises(FileNotFoundError, match='checkpoint not found: .*nope.pth'):
        export_onnx(config, str(tmp_path / 'nope.pth'), str(tmp_path / 'm.onnx'))
    with pytest.raises(FileNotFoundError, match='config not found: .*nope.py'):
        export_onnx(str(tmp_path / 'nope.py'), ckpt, str(tmp_path / 'm.onnx'))
    with pytest.raises(ValueError, match='--out must name a .onnx file'):
        export_onnx(config, ckpt, str(tmp_path / 'm.pth'))
    assert _files(tmp_path) == []


def test_shape_not_padded(reference, tmp_path):
    _, config, ckpt = reference('rpn')
    with pytest.raises(ValueError, match=r'--shape 100 130 is not a multiple of the '
                       r'data_preprocessor\'s pad_size_divisor 16.*112 144'):
        export_onnx(config, ckpt, str(tmp_path / 'm.onnx'), shape=(100, 130))


def test_failure_after_export_leaves_no_file(reference, tmp_path, monkeypatch):
    import onnx
    _, config, ckpt = reference('rpn')

    def broken(model):
        raise onnx.checker.ValidationError('simulated invalid graph')

    monkeypatch.setattr(onnx.checker, 'check_model', broken)
    with pytest.raises(onnx.checker.ValidationError, match='simulated'):
        export_onnx(config, ckpt, str(tmp_path / 'm.onnx'), shape=(64, 64))
    assert _files(tmp_path) == []


def test_existing_file_survives_a_failed_export(reference, tmp_path):
    _, config, ckpt = reference('rpn')
    out = tmp_path / 'm.onnx'
    export_onnx(config, ckpt, str(out), shape=(64, 64))
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match='does not match'):
        export_onnx(osp.join(ROOT, 'mmmimic/testing/configs/stage2/rfcn_r18-w16_tiny.py'), ckpt,
                    str(out), overwrite=True)
    assert out.read_bytes() == before
    assert _files(tmp_path) == ['m.onnx']


def test_frames_of_another_size_than_the_static_graph(reference, tmp_path):
    model, config, ckpt = reference('rpn')
    out = str(tmp_path / 'm.onnx')
    export_onnx(config, ckpt, out, shape=(96, 128))
    onnx_model = OnnxDetector(out, device='cpu')
    data = preprocess(model, frames('scene', (150, 200), seed=0)[0])
    with pytest.raises(ValueError, match=r'exported for a 96x128 input but the preprocessed '
                       r'frames are 160x208 .* --shape 160 208 or --dynamic'):
        onnx_model.predict(data['inputs'], data['data_samples'])


def test_onnx_files_not_from_mmmimic(tmp_path):
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a protobuf at all \x00\xff' * 10)
    with pytest.raises(ValueError, match='garbage.onnx is not a readable ONNX model'):
        OnnxDetector(str(garbage))
    plain = tmp_path / 'plain.onnx'
    torch.onnx.export(torch.nn.Conv2d(3, 4, 1), (torch.zeros(1, 3, 8, 8), ), str(plain),
                      dynamo=False)
    with pytest.raises(ValueError, match='plain.onnx has no "mmmimic" metadata'):
        read_onnx_meta(str(plain))
    with pytest.raises(FileNotFoundError, match='ONNX model not found: .*none.onnx'):
        OnnxDetector(str(tmp_path / 'none.onnx'))


def test_onnx_test_cfg_refuses_a_config_with_other_normalisation(reference, tmp_path):
    from mmengine.config import Config

    from mmmimic.deployment import onnx_test_cfg
    _, config, ckpt = reference('rpn')
    out = str(tmp_path / 'm.onnx')
    export_onnx(config, ckpt, out, shape=(64, 64))
    caffe = Config.fromfile(
        osp.join(ROOT, 'configs/teachers/faster-rcnn_r50-c4_1xb2-40k_caltech.py'))
    with pytest.raises(ValueError, match=r'm.onnx normalises with (mean|std|bgr_to_rgb)=.* but '
                       r'the config\'s model uses'):
        onnx_test_cfg(caffe, out)
    cfg = onnx_test_cfg(Config.fromfile(config), out)
    assert cfg.model.type == 'OnnxDetector' and cfg.load_from is None


def test_cli_reports_success_and_refuses_bad_output(reference, tmp_path):
    _, config, ckpt = reference('rpn')
    tool = osp.join(ROOT, 'tools/deployment/export_onnx.py')
    out = str(tmp_path / 'cli.onnx')
    proc = subprocess.run([sys.executable, tool, config, ckpt, '--out', out, '--shape', '64',
                           '64'], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'wrote' in proc.stdout and 'input 64x64' in proc.stdout
    assert read_onnx_meta(out)['input_shape'] == [64, 64]
    proc = subprocess.run([sys.executable, tool, config, ckpt, '--out',
                           str(tmp_path / 'missing' / 'x.onnx')], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode != 0
    assert 'output folder does not exist' in proc.stderr
    assert np.all([not n.endswith('.tmp') for n in os.listdir(tmp_path)])


def test_onnx_test_cfg_refuses_a_config_with_another_input_scale(reference, tmp_path):
    from mmengine.config import Config

    from mmmimic.deployment import onnx_test_cfg
    _, config, ckpt = reference('rpn')
    out = str(tmp_path / 'm.onnx')
    export_onnx(config, ckpt, out, shape=(64, 64))  # full-size network: input scale 1
    cross_scale = Config.fromfile(osp.join(
        ROOT, 'mmmimic/testing/configs/cross_scale/rpn_r18-w8-deconv_mimic_tiny.py'))
    with pytest.raises(ValueError, match=r'm.onnx resizes its input by 1.0 but the config\'s '
                       r'model by 0.5: the ONNX model was exported from another config'):
        onnx_test_cfg(cross_scale, out)
