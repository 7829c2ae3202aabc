"""Score detectors' official Caltech result files and plot their MR-FPPI curves.

Each result folder holds ``setXX/VYYY.txt`` with one row ``frame,x,y,w,h,score`` per detection
(frame 1-based), the layout of the published Caltech results and of ``CaltechMRMetric``'s
``save_result_files``. Ground truth is either the original vbb annotations (``annotations/setXX/
VYYY.vbb``; frames ``skip-1, 2*skip-1, ...`` are evaluated as in dbEval) or a folder of per-frame
bbGt files (our converter's ``annotations/`` with its ``test.txt``, or the new annotations of
Zhang et al., ``anno_test_1xnew/``).

A thin CLI over :func:`mmmimic.evaluation.functional.score_result_dirs`; run as a script it
imports neither torch nor mmdet, so it starts fast and light.

Usage::

    python tools/analysis_tools/caltech_eval.py res/ACF res/OurStudent \\
        --ann data/caltech/annotations --img-list data/caltech/test.txt \\
        --settings Reasonable All --out-dir work_dirs/caltech_plots

prints a table of MR-2/MR-4 (%) per algorithm and setting and writes one PNG per setting with
all algorithms' curves. An existing plot is refused (before anything is scored) unless
``--overwrite``; plots are written atomically (a temporary file renamed when complete).
"""
import argparse
import os
import os.path as osp
import sys


from mmmimic.evaluation.functional import (format_mr_table, plot_mr_fppi,
                                           score_result_dirs)
from mmmimic.fileio import check_output_path


def plot_path(out_dir: str, setting: str) -> str:
    """The plot file of one setting: ``<out_dir>/caltech_<setting>.png`` (``=`` -> ``-``)."""
    return osp.join(out_dir, f'caltech_{setting.replace("=", "-")}.png')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Score Caltech result files (MR-2/MR-4)')
    parser.add_argument('res_dirs', nargs='+', help='folders res/<alg> holding setXX/VYYY.txt')
    parser.add_argument('--ann', required=True, help='vbb root or bbGt folder')
    parser.add_argument('--img-list', help='bbGt folders: file of image ids (e.g. test.txt)')
    parser.add_argument('--sets', nargs='+', type=int, default=list(range(6, 11)))
    parser.add_argument('--skip', type=int, default=30, help='vbb: frame sampling step')
    parser.add_argument('--settings', nargs='+', default=['Reasonable'])
    parser.add_argument('--names', nargs='+', help='legend names (default: folder names)')
    parser.add_argument('--no-resize', action='store_true',
                        help='do not resize detections to aspect 0.41 (code 3.2.1 does)')
    parser.add_argument('--log-floor', type=float, default=None,
                        help='floor of the miss rates before the log (acfTest: 1e-10)')
    parser.add_argument('--out-dir', default='.', help='where the PNG plots go')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing plots (default: refuse them)')
    args = parser.parse_args(argv)
    settings = list(dict.fromkeys(args.settings))  # a repeated setting is scored and plotted once
    try:
        if osp.isdir(args.out_dir):  # refuse before the scoring, not after it
            for s in settings:
                check_output_path(plot_path(args.out_dir, s), args.overwrite, 'plot')
        results = score_result_dirs(args.res_dirs, args.ann, settings, args.sets,
                                    args.img_list, args.skip, not args.no_resize, args.log_floor,
                                    args.names)
    except (ValueError, OSError, KeyError) as e:
        print(f'error: {e.args[0] if isinstance(e, KeyError) else e}', file=sys.stderr)
        return 1
    print(format_mr_table(results))
    try:
        os.makedirs(args.out_dir, exist_ok=True)
        for s in settings:
            curves = [(alg, r[s]['fppi'], r[s]['miss_rate'], r[s]['MR-2'])
                      for alg, r in results.items()]
            out = plot_mr_fppi(curves, plot_path(args.out_dir, s), s, overwrite=args.overwrite)
            print(f'plot: {out}')
    except OSError as e:  # e.g. a plot that appeared while scoring, a full disk
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
