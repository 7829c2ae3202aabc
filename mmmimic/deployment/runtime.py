"""onnxruntime inference of exported detectors, as an mmdet model.

:class:`OnnxDetector` is a ``BaseDetector`` whose ``predict`` runs an exported ``.onnx`` file
(see :mod:`.export`) with onnxruntime and returns ``DetDataSample`` s with ``pred_instances``
(``bboxes``, ``scores``, ``labels``), as mmdet's ``predict`` does. Its data preprocessor is the
trusted config's when one is given, else a ``DetDataPreprocessor`` built from the file's checked
metadata (:mod:`.checks`), so mmengine's test loop, the Caltech metric and
``inference_detector`` style code run it like the PyTorch model. :func:`onnx_test_cfg` turns a
test config into one that scores an ``.onnx`` file (``tools/test.py CONFIG model.onnx``) and
refuses a file exported from another network.

An ``.onnx`` file is untrusted data: every reader goes through :func:`.checks.load_onnx_file`
(closed metadata schema, no registry build of anything in the file, bounded ``Loop`` s, one
read of the bytes that onnxruntime then runs).
"""
import copy
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from .checks import build_file_preprocessor, check_onnx_identity, load_onnx_file, model_hash


def read_onnx_meta(onnx_file: str) -> dict:
    """The export settings stored in an ``.onnx`` file by :func:`~.export.export_onnx`,
    checked against the closed schema of :func:`.checks.parse_onnx_meta` (the graph is not
    checked here; :class:`OnnxDetector` checks it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ONNX model, or not one exported by mmmimic (no ``mmmimic`` metadata).
        RefusedOnnxError: metadata that is not the exporter's (names the file and the key).
    """
    return load_onnx_file(onnx_file, check_graph=False)[2]


def ort_providers(device: str = 'auto') -> List[str]:
    """onnxruntime execution providers: CUDA first when available (``device='auto'``/'cuda')."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    if device == 'cpu':
        return ['CPUExecutionProvider']
    if device == 'cuda' and 'CUDAExecutionProvider' not in available:
        raise RuntimeError(f'device cuda asked for, but onnxruntime has only {available} '
                           '(install onnxruntime-gpu)')
    return [p for p in ('CUDAExecutionProvider', 'CPUExecutionProvider') if p in available]


@MODELS.register_module()
class OnnxDetector(BaseDetector):
    """An exported detector run by onnxruntime, with mmdet's ``predict`` interface.

    Args:
        onnx_file: the ``.onnx`` written by ``tools/deployment/export_onnx.py``.
        device: ``'auto'`` (CUDA provider when present, else CPU), ``'cpu'`` or ``'cuda'``.
        num_threads: onnxruntime intra-op threads (None: onnxruntime's default).
        data_preprocessor: the preprocessing, from a trusted config (a config dict, built
            through the registry, or a module); it must normalise as the file's (the pad
            divisor may differ for dynamic exports). None: a ``DetDataPreprocessor`` with the
            file's checked values (no type name from the file is looked up).
        init_cfg: unused (no weights on the PyTorch side).

    Raises:
        RefusedOnnxError: the file fails a check of :func:`.checks.load_onnx_file` (metadata
            outside the schema, an unbounded ``Loop``, external data, other inputs/outputs).
    """

    def __init__(self,
                 onnx_file: str,
                 device: str = 'auto',
                 num_threads: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        import onnxruntime as ort
        model_bytes, _, self.meta = load_onnx_file(onnx_file)
        if data_preprocessor is None:  # the file's: checked values, the one allowed class
            data_preprocessor = build_file_preprocessor(self.meta['data_preprocessor'])
        elif isinstance(data_preprocessor, dict):  # the caller's (a trusted config)
            data_preprocessor = MODELS.build(data_preprocessor)  # mmdet's, whatever the scope
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.onnx_file = onnx_file
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        # the bytes that were checked, not a second read of the path
        self.session = ort.InferenceSession(model_bytes, sess_options=options,
                                            providers=ort_providers(device))
        del model_bytes
        self.input_shape = self.meta.get('input_shape')
        self.input_scale = float(self.meta.get('input_scale', 1.0))

    def check_input(self, batch_inputs: Tensor) -> None:
        """Refuse inputs the graph was not exported for (names both sizes and the fix)."""
        h, w = batch_inputs.shape[-2:]
        if self.input_shape is not None and [h, w] != list(self.input_shape):
            raise ValueError(
                f'{self.onnx_file} was exported for a {self.input_shape[0]}x'
                f'{self.input_shape[1]} input but the preprocessed frames are {h}x{w} '
                '(after resizing and padding): re-export with --shape '
                f'{h} {w} or --dynamic')
        s = self.input_scale
        if s != 1.0 and not (float(h * s).is_integer() and float(w * s).is_integer()):
            raise ValueError(f'{self.onnx_file} resizes its input by {s}, but the frames are '
                             f'{h}x{w}, not an integer size at that scale: set the '
                             'data_preprocessor\'s pad_size_divisor so that it is')

    def run_one(self, image: Tensor, img_shape: Sequence[float],
                scale_factor: Sequence[float]) -> InstanceData:
        """Detections of one preprocessed image ``(1, 3, H, W)``."""
        boxes, scores, labels = self.session.run(
            None, {
                'image': np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32),
                'img_shape': np.asarray(img_shape[:2], dtype=np.float32),
                'scale_factor': np.asarray(scale_factor[:2], dtype=np.float32)
            })
        results = InstanceData()
        results.bboxes = torch.from_numpy(boxes).reshape(-1, 4)
        results.scores = torch.from_numpy(scores).reshape(-1)
        results.labels = torch.from_numpy(labels).reshape(-1).long()
        return results

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Run the graph per image; boxes in original-frame pixels when ``rescale``.

        Args:
            batch_inputs: ``(B, 3, H, W)`` preprocessed images.
            batch_data_samples: their data samples (``img_shape``, ``scale_factor``).
            rescale: map boxes back to the original frame (``scale_factor``), as mmdet.

        Returns:
            the data samples with ``pred_instances``.
        """
        self.check_input(batch_inputs)
        for i, data_sample in enumerate(batch_data_samples):
            scale_factor = data_sample.metainfo.get('scale_factor', (1.0, 1.0)) \
                if rescale else (1.0, 1.0)
            data_sample.pred_instances = self.run_one(batch_inputs[i:i + 1],
                                                      data_sample.img_shape, scale_factor)
        return batch_data_samples

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise NotImplementedError('an exported ONNX model cannot be trained')

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None):
        raise NotImplementedError('OnnxDetector has only predict mode (the graph ends in NMS)')

    def extract_feat(self, batch_inputs: Tensor):
        raise NotImplementedError('the exported graph does not expose features')


def onnx_test_cfg(cfg: Config, onnx_file: str, device: str = 'auto') -> Config:
    """A copy of test config ``cfg`` whose model is ``onnx_file`` run by :class:`OnnxDetector`.

    The dataset, pipeline and evaluator stay; the model becomes an ``OnnxDetector`` (with the
    config's own data preprocessor when it normalises as the file's; the file's otherwise is
    refused; a ``ScaledInputDataPreprocessor`` without its resize, which is in the graph), and
    nothing is loaded from a checkpoint.

    Raises:
        ValueError: the file's preprocessing (mean/std/channel order) or input scale differs
            from the config's model, i.e. the ``.onnx`` does not belong to this config.
        RefusedOnnxError: the file's model hash is not the config's model hash (another
            network, or other test-time settings such as the NMS thresholds), or the file
            records none; or its metadata fails the schema.
    """
    from .export import runtime_preprocessor, student_model_cfg
    meta = read_onnx_meta(onnx_file)
    cfg = copy.deepcopy(cfg)
    model_cfg, recorded_scale = student_model_cfg(cfg)
    onnx_scale = float(meta.get('input_scale', 1.0))
    if recorded_scale is not None and recorded_scale != onnx_scale:
        raise ValueError(f'{onnx_file} resizes its input by {onnx_scale} but the config\'s model '
                         f'by {recorded_scale}: the ONNX model was exported from another config')
    dp_cfg = runtime_preprocessor(model_cfg) if model_cfg.get('data_preprocessor') else {}
    stored = meta['data_preprocessor']
    for key in ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr'):
        a, b = dp_cfg.get(key), stored.get(key)
        if a is not None and b is not None and list(np.atleast_1d(a)) != list(np.atleast_1d(b)):
            raise ValueError(f'{onnx_file} normalises with {key}={b} but the config\'s model uses '
                             f'{key}={a}: the ONNX model was exported from another config')
    config = getattr(cfg, 'filename', None) or 'the test config'
    check_onnx_identity(meta, model_hash(model_cfg), onnx_file, config)
    cfg.model = ConfigDict(type='OnnxDetector', onnx_file=onnx_file, device=device,
                           data_preprocessor=dict(dp_cfg) if dp_cfg else None)
    cfg.load_from = None
    cfg.resume = False
    return cfg
