import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'test_distillers'))
from mimic_test_utils import make_teacher_ckpt  # noqa: E402


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """A tiny teacher checkpoint (the cross-scale distiller needs one)."""
    return make_teacher_ckpt(str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))
