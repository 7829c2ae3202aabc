"""Checkpoints written under one numpy major load under the other.

numpy 1.x pickles arrays and scalars through ``numpy.core.multiarray``, numpy 2.x through
``numpy._core.multiarray``. Each test writes a checkpoint with the running numpy, renames those
records to the other major's module (exactly what a file from the other major holds) and loads it
with mmmimic's weights-only loader.
"""
import io
import zipfile

import numpy as np
import pytest
import torch
from test_checkpoint import _check_mmengine_checkpoint, _mmengine_like_checkpoint

from mmmimic.compat.checkpoint import load_checkpoint_file

NUMPY1 = b'cnumpy.core.multiarray\n'
NUMPY2 = b'cnumpy._core.multiarray\n'
RUNNING, OTHER = (NUMPY2, NUMPY1) if np.__version__.startswith('2.') else (NUMPY1, NUMPY2)


def _numpy_modules(path):
    """The numpy modules named by the GLOBAL records of a checkpoint's pickle."""
    with zipfile.ZipFile(path) as archive:
        pkl = next(n for n in archive.namelist() if n.endswith('/data.pkl'))
        data = archive.read(pkl)
    return {m for m in (NUMPY1, NUMPY2) if m in data}


def _as_other_numpy_major(src, dst):
    """Copy a torch zip checkpoint, naming the other numpy major's module in its pickle."""
    with zipfile.ZipFile(src) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as archive:
        for info, data in entries:
            if info.filename.endswith('/data.pkl'):
                assert RUNNING in data, f'{src}: no {RUNNING!r} record to rename'
                data = data.replace(RUNNING, OTHER)
            archive.writestr(info.filename, data)
    with open(dst, 'wb') as f:
        f.write(out.getvalue())


def test_running_numpy_writes_its_own_module_names(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    assert _numpy_modules(path) == {RUNNING}


def test_checkpoint_of_the_other_numpy_major_loads(tmp_path):
    mine, other = str(tmp_path / 'mine.pth'), str(tmp_path / 'other.pth')
    reference = _mmengine_like_checkpoint(mine)
    _as_other_numpy_major(mine, other)
    assert _numpy_modules(other) == {OTHER}
    ckpt = load_checkpoint_file(other)
    _check_mmengine_checkpoint(ckpt, reference)
    assert ckpt['message_hub']['log_scalars']['train/lr'].current() == pytest.approx(0.01)
    # The renamed file is refused by torch's own weights-only loader without the stand-ins.
    with pytest.raises(Exception, match=r'numpy\.(_core|core)\.multiarray'):
        torch.load(other, weights_only=True)
