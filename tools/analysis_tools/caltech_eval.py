"""Score detectors' official Caltech result files and plot their MR-FPPI curves.

Each result folder holds ``setXX/VYYY.txt`` with one row ``frame,x,y,w,h,score`` per detection
(frame 1-based), the layout of the published Caltech results and of ``CaltechMRMetric``'s
``save_result_files``. Ground truth is either the original vbb annotations (``annotations/setXX/
VYYY.vbb``; frames ``skip-1, 2*skip-1, ...`` are evaluated as in dbEval) or a folder of per-frame
bbGt files (our converter's ``annotations/`` with its ``test.txt``, or the new annotations of
Zhang et al., ``anno_test_1xnew/``).

Usage::

    python tools/analysis_tools/caltech_eval.py res/ACF res/OurStudent \\
        --ann data/caltech/annotations --img-list data/caltech/test.txt \\
        --settings Reasonable All --out-dir work_dirs/caltech_plots

prints a table of MR-2/MR-4 (%) per algorithm and setting and writes one PNG per setting with
all algorithms' curves.
"""
import argparse
import os
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmmimic.datasets.caltech import parse_img_id
from mmmimic.datasets.caltech_io import read_bbgt, read_result_file, read_vbb
from mmmimic.evaluation.functional import evaluate_caltech, plot_mr_fppi


def _gt_from_objects(objs: List[Dict]) -> Dict:
    return dict(
        bboxes=np.array([o['pos'] for o in objs], np.float64).reshape(-1, 4),
        bboxes_vis=np.array([o['posv'] for o in objs], np.float64).reshape(-1, 4),
        labels=[o['lbl'] for o in objs],
        ignore=np.array([o.get('ign', 0) for o in objs], bool))


def load_ground_truth(ann: str,
                      sets: Sequence[int] = tuple(range(6, 11)),
                      img_list: Optional[str] = None,
                      skip: int = 30) -> Tuple[List[Tuple[int, int, int]], List[Dict]]:
    """Frames to evaluate and their raw annotations.

    Args:
        ann: a vbb root (``setXX/VYYY.vbb``) or a folder of bbGt files (``<id>.txt`` or
            ``<id>.jpg.txt``).
        sets: set numbers to evaluate.
        img_list: bbGt folders only: a file of image ids (default: every file in the folder).
        skip: vbb only: evaluate frames ``skip-1, 2*skip-1, ...`` (30 for the test set).

    Returns:
        ``(frames, gts)``: ``(set, video, 0-based frame)`` per image and the annotations.
    """
    frames, gts = [], []
    if any(osp.isdir(osp.join(ann, f'set{s:02d}')) for s in sets):
        for s in sets:
            set_dir = osp.join(ann, f'set{s:02d}')
            if not osp.isdir(set_dir):
                continue
            for name in sorted(n for n in os.listdir(set_dir) if n.endswith('.vbb')):
                objs = read_vbb(osp.join(set_dir, name))
                for f in range(skip - 1, len(objs), skip):
                    frames.append((s, int(name[1:-4]), f))
                    gts.append(_gt_from_objects(objs[f]))
        return frames, gts
    if img_list is not None:
        with open(img_list) as fh:
            ids = [line.strip() for line in fh if line.strip()]
    else:
        ids = sorted({n[:-8] if n.endswith('.jpg.txt') else n[:-4]
                      for n in os.listdir(ann) if n.endswith('.txt')})
    for img_id in ids:
        sid = parse_img_id(img_id)
        if sid[0] not in sets:
            continue
        path = osp.join(ann, img_id + '.txt')
        if not osp.isfile(path):
            path = osp.join(ann, img_id + '.jpg.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'no annotation {img_id}.txt or {img_id}.jpg.txt in {ann}')
        frames.append(sid)
        gts.append(_gt_from_objects(read_bbgt(path)))
    if not frames:
        raise FileNotFoundError(f'{ann}: no vbb or bbGt annotations of sets {list(sets)}')
    return frames, gts


def load_detections(res_dir: str, frames: Sequence[Tuple[int, int, int]]) -> List[np.ndarray]:
    """Per evaluated frame, the (m, 5) ``[x, y, w, h, score]`` of ``res_dir/setXX/VYYY.txt``.

    Raises:
        FileNotFoundError: a video's result file is missing (names it).
    """
    by_video = defaultdict(list)
    for i, (s, v, f) in enumerate(frames):
        by_video[(s, v)].append((i, f))
    dts: List[np.ndarray] = [np.zeros((0, 5))] * len(frames)
    for (s, v), items in by_video.items():
        path = osp.join(res_dir, f'set{s:02d}', f'V{v:03d}.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{res_dir}: missing result file {path}')
        rows = read_result_file(path)
        rows = rows[np.argsort(rows[:, 0], kind='stable')]  # keeps the file order per frame
        for i, f in items:
            lo = np.searchsorted(rows[:, 0], f + 1, side='left')
            hi = np.searchsorted(rows[:, 0], f + 1, side='right')
            dts[i] = rows[lo:hi, 1:6]
    return dts


def score_result_dirs(res_dirs: Sequence[str],
                      ann: str,
                      settings: Sequence[str] = ('Reasonable', ),
                      sets: Sequence[int] = tuple(range(6, 11)),
                      img_list: Optional[str] = None,
                      skip: int = 30,
                      resize_dets: bool = True,
                      log_floor: Optional[float] = None,
                      names: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Dict]]:
    """``{algorithm: evaluate_caltech(...)}`` for each result folder (see the module doc)."""
    frames, gts = load_ground_truth(ann, sets, img_list, skip)
    names = list(names) if names else [osp.basename(osp.normpath(d)) for d in res_dirs]
    if len(names) != len(res_dirs):
        raise ValueError(f'{len(names)} names for {len(res_dirs)} result folders')
    return {
        name: evaluate_caltech(gts, load_detections(d, frames), settings,
                               resize_dets=resize_dets, log_floor=log_floor)
        for name, d in zip(names, res_dirs)
    }


def format_table(results: Dict[str, Dict[str, Dict]]) -> str:
    """Algorithms as rows, ``<setting> MR-2 / MR-4`` (%) as columns."""
    settings = list(next(iter(results.values())))
    width = max(12, max(len(a) for a in results) + 2)
    head = f'{"algorithm":<{width}}' + ''.join(f'{s + " MR-2":>20}{"MR-4":>8}' for s in settings)
    lines = [head]
    for alg, res in results.items():
        lines.append(f'{alg:<{width}}' + ''.join(
            f'{100 * res[s]["MR-2"]:>20.2f}{100 * res[s]["MR-4"]:>8.2f}' for s in settings))
    return '\n'.join(lines)


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
    args = parser.parse_args(argv)
    try:
        results = score_result_dirs(args.res_dirs, args.ann, args.settings, args.sets,
                                    args.img_list, args.skip, not args.no_resize, args.log_floor,
                                    args.names)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_table(results))
    os.makedirs(args.out_dir, exist_ok=True)
    for s in args.settings:
        curves = [(alg, r[s]['fppi'], r[s]['miss_rate'], r[s]['MR-2'])
                  for alg, r in results.items()]
        out = plot_mr_fppi(curves, osp.join(args.out_dir, f'caltech_{s.replace("=", "-")}.png'),
                           s)
        print(f'plot: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
