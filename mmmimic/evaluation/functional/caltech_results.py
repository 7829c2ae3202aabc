"""Scoring detectors' official Caltech result files (``res/<algorithm>/setXX/VYYY.txt``).

Each result folder holds ``setXX/VYYY.txt`` with one row ``frame,x,y,w,h,score`` per detection
(frame 1-based), the layout of the published Caltech results and of ``CaltechMRMetric``'s
``save_result_files``. Ground truth is either the original vbb annotations (``annotations/setXX/
VYYY.vbb``; frames ``skip-1, 2*skip-1, ...`` are evaluated as in dbEval) or a folder of per-frame
bbGt files (the converter's ``annotations/`` with its ``test.txt``, or the new annotations of
Zhang et al., ``anno_test_1xnew/``).

:func:`score_result_dirs` reads both and runs :func:`~.caltech_eval.evaluate_caltech`;
``tools/analysis_tools/caltech_eval.py`` is its command line. numpy/scipy only: importable
without torch or mmdet.
"""
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmmimic.datasets.caltech_io import (parse_img_id, parse_video_name, read_bbgt,
                                         read_image_list, read_result_file, read_vbb)
from .caltech_eval import evaluate_caltech, get_setting


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
        img_list: bbGt folders only: a file of image ids, each listed once (default: every
            file in the folder).
        skip: vbb only: evaluate frames ``skip-1, 2*skip-1, ...`` (30 for the test set).

    Returns:
        ``(frames, gts)``: ``(set, video, 0-based frame)`` per image and the annotations.

    Raises:
        FileNotFoundError: no annotation of ``sets``, or a listed image without its file.
        ValueError: a corrupt vbb/bbGt file (see :func:`~mmmimic.datasets.caltech_io.read_vbb`,
            :func:`~mmmimic.datasets.caltech_io.read_bbgt`), a badly named video or image id, or
            an image listed twice in ``img_list`` (names the file, and the line where there is
            one).
    """
    frames, gts = [], []
    if any(osp.isdir(osp.join(ann, f'set{s:02d}')) for s in sets):
        for s in sets:
            set_dir = osp.join(ann, f'set{s:02d}')
            if not osp.isdir(set_dir):
                continue
            for name in sorted(n for n in os.listdir(set_dir) if n.endswith('.vbb')):
                objs = read_vbb(osp.join(set_dir, name))
                number = parse_video_name(osp.join(set_dir, name))
                for f in range(skip - 1, len(objs), skip):
                    frames.append((s, number, f))
                    gts.append(_gt_from_objects(objs[f]))
        return frames, gts
    if img_list is not None:
        ids = read_image_list(img_list)
    else:
        ids = sorted({n[:-8] if n.endswith('.jpg.txt') else n[:-4]
                      for n in os.listdir(ann) if n.endswith('.txt')})
    for img_id in ids:
        try:
            sid = parse_img_id(img_id)
        except ValueError as e:
            raise ValueError(f'{ann}: {e}') from None
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

    Missing frames of a video are frames without detections; an empty file is a video
    without detections.

    Raises:
        FileNotFoundError: a video's result file is missing (names it).
        ValueError: a malformed line, a NaN/inf value or a frame number that is not a positive
            integer (names the file, line and value; see
            :func:`~mmmimic.datasets.caltech_io.read_result_file`).
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
    """``{algorithm: evaluate_caltech(...)}`` for each result folder (see the module doc).

    Args:
        res_dirs: result folders ``res/<algorithm>`` holding ``setXX/VYYY.txt``.
        ann: vbb root or bbGt folder (see :func:`load_ground_truth`).
        settings: dbEval setting names (checked before any file is read).
        sets, img_list, skip: which frames are evaluated (see :func:`load_ground_truth`).
        resize_dets, log_floor: see :func:`~.caltech_eval.evaluate_caltech`.
        names: algorithm names (default: the folder names).

    Returns:
        ``{algorithm: {setting: result}}``; a folder of empty files (a detector that finds
        nothing) scores MR-2 = MR-4 = 1 (100 %).

    Raises:
        KeyError: an unknown setting (lists the known ones).
        ValueError, FileNotFoundError: bad or missing files (see the loaders).
    """
    for setting in settings:
        get_setting(setting)
    names = list(names) if names else [osp.basename(osp.normpath(d)) for d in res_dirs]
    if len(names) != len(res_dirs):
        raise ValueError(f'{len(names)} names for {len(res_dirs)} result folders')
    frames, gts = load_ground_truth(ann, sets, img_list, skip)
    img_ids = [f'set{s:02d}_V{v:03d}_I{f:05d}' for s, v, f in frames]
    return {
        name: evaluate_caltech(gts, load_detections(d, frames), settings,
                               resize_dets=resize_dets, log_floor=log_floor, img_ids=img_ids)
        for name, d in zip(names, res_dirs)
    }


def format_mr_table(results: Dict[str, Dict[str, Dict]]) -> str:
    """Algorithms as rows, ``<setting> MR-2 / MR-4`` (%) as columns."""
    settings = list(next(iter(results.values())))
    width = max(12, max(len(a) for a in results) + 2)
    head = f'{"algorithm":<{width}}' + ''.join(f'{s + " MR-2":>20}{"MR-4":>8}' for s in settings)
    lines = [head]
    for alg, res in results.items():
        lines.append(f'{alg:<{width}}' + ''.join(
            f'{100 * res[s]["MR-2"]:>20.2f}{100 * res[s]["MR-4"]:>8.2f}' for s in settings))
    return '\n'.join(lines)
