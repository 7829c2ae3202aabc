"""Deployment of mmmimic detectors: ONNX export and the onnxruntime runtime.

Needs the optional ``mmmimic[deploy]`` extra (``onnx``, ``onnxruntime``;
``bash tools/install.sh --deploy``). See docs/deployment.md.
"""
from .export import META_KEY, OPSET, export_onnx, load_detector  # noqa: F401
from .graph import (SUPPORTED_MODELS, DeployableDetector, NoOnnxRouteError,  # noqa: F401
                    check_onnx_route, ps_roi_pool_gather)
from .runtime import OnnxDetector, onnx_test_cfg, read_onnx_meta  # noqa: F401

__all__ = [
    'META_KEY', 'OPSET', 'export_onnx', 'load_detector', 'SUPPORTED_MODELS',
    'DeployableDetector', 'NoOnnxRouteError', 'check_onnx_route', 'ps_roi_pool_gather',
    'OnnxDetector', 'onnx_test_cfg', 'read_onnx_meta'
]
