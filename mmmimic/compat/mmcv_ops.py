"""Fail at import when mmcv was installed without its compiled ops (mmcv-lite)."""
import importlib.util

MMCV_REQUIRED = '2.1.0'


def check_mmcv_ops() -> None:
    """Fail early, and say how to fix it, when mmcv was installed without its compiled ops.

    ``mmcv-lite`` (or an mmcv built with ``MMCV_WITH_OPS=0``) imports fine but has no
    ``mmcv._ext``; mmdet's two-stage detectors and mmmimic's pooled mimic loss then fail deep
    inside a forward pass with an obscure message. This check turns that into one clear error.
    """
    try:
        import mmcv
    except ImportError as e:
        raise ImportError(
            'mmmimic needs mmcv 2.1.0 with compiled ops; mmcv is not installed. '
            'Run `bash tools/install.sh` (see README.md).') from e
    if importlib.util.find_spec('mmcv._ext') is None:
        raise ImportError(
            f'mmcv {mmcv.__version__} is installed without its compiled ops (mmcv._ext is '
            'missing: this is mmcv-lite or a build with MMCV_WITH_OPS=0). mmmimic needs '
            'RoIAlign/nms from mmcv.ops. Fix: `pip uninstall -y mmcv mmcv-lite` then '
            '`bash tools/install.sh` (uses a prebuilt wheel from $WHEELS if given, else builds '
            f'mmcv=={MMCV_REQUIRED} from source: `MMCV_WITH_OPS=1 pip install '
            f'--no-build-isolation "setuptools<81" mmcv=={MMCV_REQUIRED}`).')
