# Copyright (c) mmmimic contributors. All rights reserved.
"""The one progress bar of mmmimic's long jobs (tqdm; imports neither torch nor mmdet)."""
import os
import sys
from typing import Any, Iterable, Optional

#: Set to ``1`` to show progress bars when stderr is not a terminal (e.g. in CI logs).
PROGRESS_ENV = 'MMMIMIC_PROGRESS'


def progress(iterable: Optional[Iterable] = None, *, desc: str = '', total: Optional[int] = None,
             unit: str = 'it', enabled: Optional[bool] = None, leave: bool = True) -> Any:
    """A tqdm bar over ``iterable`` (or, without one, a bar advanced by ``.update(n)``).

    Args:
        iterable: what to iterate; ``None`` for a manual bar (use it as a context manager).
        desc: the bar's label.
        total: the number of steps when ``len(iterable)`` does not give it.
        unit: the unit shown (``'img'``, ``'frame'``...).
        enabled: show the bar; ``None`` (default) shows it on a terminal, or anywhere when the
            environment variable ``MMMIMIC_PROGRESS`` is ``1``. A hidden bar still counts.
        leave: keep the finished bar on screen.
    """
    from tqdm import tqdm
    if enabled is None:
        enabled = sys.stderr.isatty() or os.environ.get(PROGRESS_ENV) == '1'
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=not enabled)
