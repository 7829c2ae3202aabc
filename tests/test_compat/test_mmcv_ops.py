import importlib.util

import pytest

from mmmimic.compat import check_mmcv_ops


def test_full_mmcv_passes():
    check_mmcv_ops()
    from mmcv.ops import RoIAlign, nms  # noqa: F401


def test_mmcv_lite_is_a_clear_error(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def no_ext(name, *args, **kwargs):
        return None if name == 'mmcv._ext' else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, 'find_spec', no_ext)
    with pytest.raises(ImportError, match=r'without its compiled ops.*mmcv-lite.*install\.sh'):
        check_mmcv_ops()
