import pytest
import torch
from mimic_test_utils import make_teacher_ckpt


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """A tiny teacher checkpoint with non-trivial BN statistics."""
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny models: one intra-op thread is ~3x faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
