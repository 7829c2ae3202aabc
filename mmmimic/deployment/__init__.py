"""Deployment of mmmimic detectors: ONNX export and the onnxruntime runtime.

Needs the optional ``mmmimic[deploy]`` extra (``onnx``, ``onnxruntime``;
``bash tools/install.sh --deploy``). See docs/user_guides/deployment.md. An ``.onnx`` file is
untrusted
data: :mod:`.checks` says what is read from one and how it is checked.
"""
from ..compat import install as _install_compat

_install_compat()  # the checkpoint/resume patches, before anything here loads a file

from .checks import (MAX_LOOP_TRIPS, RefusedOnnxError, check_onnx_graph,  # noqa: F401,E402
                     check_onnx_identity, model_hash, parse_onnx_meta)
from .export import (META_KEY, OPSET, config_model_hash, export_onnx,  # noqa: F401,E402
                     load_detector)
from .graph import (SUPPORTED_MODELS, DeployableDetector, NoOnnxRouteError,  # noqa: F401,E402
                    check_onnx_route, ps_roi_pool_gather)
from .runtime import OnnxDetector, onnx_test_cfg, read_onnx_meta  # noqa: F401,E402

__all__ = [
    'META_KEY', 'OPSET', 'export_onnx', 'load_detector', 'config_model_hash', 'model_hash',
    'MAX_LOOP_TRIPS', 'RefusedOnnxError', 'check_onnx_graph', 'check_onnx_identity',
    'parse_onnx_meta', 'SUPPORTED_MODELS', 'DeployableDetector', 'NoOnnxRouteError',
    'check_onnx_route', 'ps_roi_pool_gather', 'OnnxDetector', 'onnx_test_cfg', 'read_onnx_meta'
]
