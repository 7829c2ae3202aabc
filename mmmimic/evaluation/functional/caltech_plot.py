"""MR-vs-FPPI plots in the style of the Caltech benchmark figures (matplotlib, Agg backend)."""
import os.path as osp
from typing import Sequence, Tuple

import numpy as np

from mmmimic.fileio import atomic_output


def plot_mr_fppi(curves: Sequence[Tuple[str, np.ndarray, np.ndarray, float]],
                 out_file: str,
                 title: str = 'Reasonable',
                 mr_name: str = 'MR-2',
                 overwrite: bool = True) -> str:
    """Plot miss rate against false positives per image (log-log), best curve first in the legend.

    Args:
        curves: ``(label, fppi, miss_rate, mr)`` per detector; ``mr`` (fraction) is shown in the
            legend as ``"<mr %> label"`` like dbEval.
        out_file: the image to write (its extension gives the format, PNG by default);
            written through :func:`mmmimic.fileio.atomic_output`, so an interrupted save
            leaves no partial file.
        title: plot title (the experiment setting).
        mr_name: the summary shown in the legend.
        overwrite: replace an existing ``out_file``; False refuses it (``FileExistsError``
            naming it; ``tools/analysis_tools/caltech_eval.py`` without ``--overwrite``).

    Returns:
        ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    for label, fppi, miss, mr in sorted(curves, key=lambda c: np.nan_to_num(c[3], nan=9)):
        x = np.concatenate([[1e-4], np.asarray(fppi, np.float64)])
        y = np.concatenate([[1.], np.asarray(miss, np.float64)])
        ax.step(x, np.maximum(y, 1e-3), where='post', lw=1.5,
                label=f'{100 * mr:.2f}% {label}')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlim(1e-3, 1e1)
    ax.set_ylim(0.05, 1)
    ticks = [.05, .1, .2, .3, .4, .5, .64, .8, 1]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f'{t:g}' for t in ticks])
    ax.set_xlabel('false positives per image')
    ax.set_ylabel('miss rate')
    ax.set_title(f'{title} ({mr_name})')
    ax.grid(True, which='both', ls=':', lw=.5)
    ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    try:
        with atomic_output(out_file, overwrite, 'plot') as tmp:
            fig.savefig(tmp, format=osp.splitext(out_file)[1][1:].lower() or 'png')
    finally:
        plt.close(fig)
    return out_file
