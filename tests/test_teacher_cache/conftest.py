import pytest

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.utils import register_all_modules

register_all_modules()


@pytest.fixture(autouse=True)
def _one_torch_thread(single_torch_thread):
    """Every test here runs with one intra-op thread (tests/conftest.py)."""
    yield
