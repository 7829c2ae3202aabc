import pytest
from mmmimic.testing.distill import make_teacher_ckpt


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """A tiny teacher checkpoint with non-trivial BN statistics."""
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


@pytest.fixture(autouse=True)
def _one_torch_thread(single_torch_thread):
    """Every test here runs with one intra-op thread (tests/conftest.py)."""
    yield
