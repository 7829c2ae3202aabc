# Copyright (c) mmmimic contributors. All rights reserved.
"""Markdown tables for result files and logs, through ``tabulate`` (no torch, no mmdet)."""
from typing import Any, Sequence

from tabulate import tabulate


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str],
                   align: Sequence[str] = ()) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` under ``headers``.

    Cells are written as given (``str(cell)``; no number parsing), so format numbers before
    (``f'{mr:.1f}'``) to choose their decimals. ``align`` gives one of ``'left'``, ``'right'``,
    ``'center'`` per column (default: tabulate's, left for text).

    Raises:
        ValueError: a row whose length differs from ``headers`` (names the row).
    """
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f'markdown_table: row {i} has {len(row)} cells for '
                             f'{len(headers)} headers: {list(row)!r}')
    return tabulate([[str(c) for c in row] for row in rows], headers=list(headers),
                    tablefmt='pipe', disable_numparse=True,
                    colalign=tuple(align) if align else None)
