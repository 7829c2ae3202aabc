# Copyright (c) mmmimic contributors. All rights reserved.
"""Progress bars of the vtest build (tqdm on a terminal, or when ``MMMIMIC_PROGRESS=1``)."""
import os
import sys
from typing import Iterable, Optional


def progress_bar(iterable: Iterable, desc: str, total: Optional[int] = None) -> Iterable:
    """Wrap ``iterable`` in a tqdm bar of frames, shown on a terminal or when the environment
    variable ``MMMIMIC_PROGRESS`` is ``1``; the plain iterable when tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of mmengine
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit='frame', leave=False,
                disable=not sys.stderr.isatty() and os.environ.get('MMMIMIC_PROGRESS') != '1')
