"""Import-time compatibility patches, installed by one call: :func:`install`.

* :mod:`.mmcv_ops`: fail at once, with the fix, when mmcv lacks its compiled ops (mmcv-lite).
* :mod:`.checkpoint`: torch >= 2.6 weights-only loading of mmengine checkpoints, widened only by
  torch's ``safe_globals`` for what mmengine writes; ``HistoryBuffer`` pickles without ``getattr``.
* :mod:`.resume`: ``Runner.resume`` never executes the checkpoint's ``meta['config']`` and
  checks its counters, message hub, RNG states and weights first.
* :mod:`.mmpretrain`: ``import mmpretrain.models`` without torchvision.
"""
from .checkpoint import (TRUST_ENV, UnsafeCheckpointError, load_checkpoint_file,
                         register_checkpoint_loader, register_history_buffer_reducer)
from .mmcv_ops import check_mmcv_ops
from .mmpretrain import install_import_hook
from .resume import ResumeCheckpointError, check_resume_checkpoint, install_checked_resume


def install() -> None:
    """Install every patch (idempotent)."""
    check_mmcv_ops()
    register_checkpoint_loader()
    register_history_buffer_reducer()
    install_import_hook()
    install_checked_resume()


__all__ = [
    'install', 'check_mmcv_ops', 'load_checkpoint_file', 'register_checkpoint_loader',
    'register_history_buffer_reducer', 'install_import_hook', 'TRUST_ENV',
    'UnsafeCheckpointError', 'ResumeCheckpointError', 'check_resume_checkpoint',
    'install_checked_resume'
]
