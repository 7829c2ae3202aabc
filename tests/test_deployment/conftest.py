"""Fixtures of the deployment tests (helpers in deploy_utils.py).

Every test module here starts with ``pytest.importorskip`` of onnx and onnxruntime: without the
optional deploy extra they are skipped with the reason (CI installs it:
``tools/install.sh --deploy``).
"""
import pytest
from deploy_utils import build_reference


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """Per kind, built once per module: ``(model, config, checkpoint)``."""
    cache = {}

    def get(kind):
        if kind not in cache:
            cache[kind] = build_reference(kind, str(tmp_path_factory.mktemp(kind)))
        return cache[kind]

    return get
