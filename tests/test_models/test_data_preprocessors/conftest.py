import pytest

from mmmimic.testing.distill import make_teacher_ckpt


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """A tiny teacher checkpoint (the cross-scale distiller needs one)."""
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))
