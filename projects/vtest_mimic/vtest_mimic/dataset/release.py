# Copyright (c) mmmimic contributors. All rights reserved.
"""The Caltech-format vtest release: temporally disjoint splits, one ``.seq`` + ``.vbb`` per
split, and ``splits.json`` (layout, frame ranges, label statistics, cache key).

Layout under ``out``::

    set00/V000.seq              train  (video frames 0-416 by default)
    set01/V000.seq              val    (447-526: carved from the training part)
    set02/V000.seq              test   (557-794: the last 30% of the video)
    annotations/setXX/V000.vbb  the matching annotations
    splits.json                 frame ranges, gaps, scale, label statistics
"""
import hashlib
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmmimic.datasets.caltech_io import write_seq, write_vbb
from mmmimic.utils.progress_bar import progress
from .label_cache import BUILD_VERSION, label_video, labeller_digest, labels_from_json
from .source import file_digest
from .structures import PERSON, FrameLabels, LabelerConfig
from .video import decode_video

SPLIT_SETS = (('train', 'set00'), ('val', 'set01'), ('test', 'set02'))


def make_splits(num_frames: int, test_frac: float = 0.3, val_frac: float = 0.1,
                gap: int = 30) -> Dict[str, Tuple[int, int]]:
    """Temporally disjoint ``[start, end)`` frame ranges: train, gap, val, gap, test.

    The test part is the last ``test_frac`` of the video; the validation part is carved
    from the end of the remaining (training) frames; ``gap`` frames are dropped before the
    validation and before the test part so near-identical frames do not leak.

    Raises:
        ValueError: if the video is too short for the requested splits.
    """
    n_test = int(round(num_frames * test_frac))
    n_val = int(round(num_frames * val_frac))
    test = (num_frames - n_test, num_frames)
    val = (test[0] - gap - n_val, test[0] - gap)
    train = (0, (val[0] - gap) if n_val > 0 else val[1])
    if n_test < 1 or train[1] < 1 or val[0] < 0:
        raise ValueError(f'{num_frames} frames are too few for test_frac={test_frac}, '
                         f'val_frac={val_frac}, gap={gap}')
    return dict(train=train, val=val, test=test)


def to_vbb_frames(labels: Sequence[FrameLabels], scale: float,
                  img_size: Tuple[int, int]) -> List[List[dict]]:
    """Convert labels of consecutive frames to :func:`write_vbb` objects.

    Ids are renumbered from 1 so that every id is one contiguous run of frames with one
    label (a track whose label changes, e.g. when two people merge, gets a new id).

    Args:
        labels: per-frame labels (boxes in source pixels).
        scale: factor from source to output pixels.
        img_size: (width, height) of the output frames (boxes are clipped to it).
    """
    out_w, out_h = img_size
    new_id: Dict[Tuple[int, str], int] = {}
    last_seen: Dict[Tuple[int, str], int] = {}
    next_id = 1
    frames = []
    for f, fl in enumerate(labels):
        objs = []
        for box, lbl, tid in zip(fl.boxes, fl.labels, fl.object_ids):
            key = (int(tid), lbl)
            if key not in new_id or last_seen[key] != f - 1:
                new_id[key] = next_id
                next_id += 1
            last_seen[key] = f
            x0, y0 = max(0.0, box[0] * scale), max(0.0, box[1] * scale)
            x1 = min(float(out_w), (box[0] + box[2]) * scale)
            y1 = min(float(out_h), (box[1] + box[3]) * scale)
            pos = [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
            objs.append(dict(id=new_id[key], lbl=lbl, pos=pos, posv=[0, 0, 0, 0], occl=0))
        frames.append(objs)
    return frames


def label_stats(vbb_frames: Sequence[Sequence[dict]], img_width: float) -> dict:
    """Statistics of written annotations.

    Args:
        vbb_frames: per-frame objects as given to :func:`write_vbb`.
        img_width: output frame width; an ignore box at least 90% as wide is the far-field
            band, counted separately from the per-object ignore boxes.

    Returns:
        dict of counts, per-frame rates, the ignore fraction (ignore boxes among person and
        ignore boxes, band excluded) and person box heights.
    """
    n = len(vbb_frames)
    persons, ignores, band_frames = 0, 0, 0
    heights = []
    for objs in vbb_frames:
        for o in objs:
            if o['lbl'] == PERSON:
                persons += 1
                heights.append(o['pos'][3])
            elif o['pos'][2] >= 0.9 * img_width:
                band_frames += 1
            else:
                ignores += 1
    h = np.asarray(heights, dtype=np.float64)
    stats = dict(
        frames=n,
        person_boxes=persons,
        ignore_boxes=ignores,
        person_per_frame=round(persons / max(n, 1), 3),
        ignore_per_frame=round(ignores / max(n, 1), 3),
        ignore_fraction=round(ignores / max(persons + ignores, 1), 3),
        frames_with_person=int(sum(any(o['lbl'] == PERSON for o in objs)
                                   for objs in vbb_frames)),
        frames_with_far_band=band_frames)
    if len(h):
        stats.update(
            height_min=round(float(h.min()), 1),
            height_p10=round(float(np.percentile(h, 10)), 1),
            height_median=round(float(np.median(h)), 1),
            height_p90=round(float(np.percentile(h, 90)), 1),
            height_max=round(float(h.max()), 1),
            frac_height_ge_50=round(float((h >= 50).mean()), 3))
    return stats


def parse_size(size: str, native: Tuple[int, int]) -> Tuple[int, int]:
    """``'640x480'`` -> (640, 480); ``'native'`` -> ``native`` (width, height)."""
    if size == 'native':
        return native
    try:
        w, h = (int(v) for v in size.lower().split('x'))
    except ValueError:
        raise ValueError(f'--size must be WIDTHxHEIGHT or native, got {size!r}') from None
    if w <= 0 or h <= 0:
        raise ValueError(f'--size must be positive, got {size!r}')
    return w, h


def _release_files(out: str) -> List[str]:
    files = []
    for _, set_name in SPLIT_SETS:
        files.append(osp.join(out, set_name, 'V000.seq'))
        files.append(osp.join(out, 'annotations', set_name, 'V000.vbb'))
    return files


def release_key(video_digest: str, cfg: LabelerConfig, **options) -> str:
    """Digest of everything a release depends on: the video, the labeller (parameters and
    code), the build ``options`` (size, JPEG quality, split fractions, gap) and the version."""
    key_d = dict(video=video_digest, cfg=labeller_digest(cfg), v=BUILD_VERSION, **options)
    return hashlib.sha1(json.dumps(key_d, sort_keys=True).encode()).hexdigest()[:16]


def _read_if_up_to_date(out: str, key: str) -> Optional[dict]:
    """The ``splits.json`` of the release in ``out`` when it is complete and has ``key``."""
    info_path = osp.join(out, 'splits.json')
    if not (osp.isfile(info_path) and all(map(osp.isfile, _release_files(out)))):
        return None
    with open(info_path) as fh:
        info = json.load(fh)
    return info if info.get('key') == key else None


def _labels_and_frames(video: str, cfg: LabelerConfig, cache_dir: Optional[str],
                       force: bool) -> Tuple[dict, List[np.ndarray]]:
    """The (cached) labels json of ``video`` and its decoded frames, checked to agree."""
    labels_d, frames = label_video(video, cfg, cache_dir, force=force)
    if frames is None:
        frames = decode_video(video)
    if len(frames) != labels_d['num_frames']:
        raise RuntimeError(f'{video}: decoded {len(frames)} frames but the labels have '
                           f'{labels_d["num_frames"]}; rerun with --force')
    return labels_d, frames


def _output_size(size: str, src_w: int, src_h: int) -> Tuple[int, int, float]:
    """(width, height, scale) of the output frames for ``--size``; the aspect must be kept."""
    out_w, out_h = parse_size(size, (src_w, src_h))
    sx, sy = out_w / src_w, out_h / src_h
    if abs(sx - sy) > 1e-6:
        raise ValueError(f'--size {size} changes the aspect ratio of {src_w}x{src_h}')
    return out_w, out_h, sx


def _video_fps(video: str) -> float:
    cap = cv2.VideoCapture(video)
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
    cap.release()
    return fps


def _encode_jpegs(frames: Sequence[np.ndarray], indices: range, out_size: Tuple[int, int],
                  jpeg_quality: int, desc: str) -> List[bytes]:
    """JPEG bytes of ``frames[i]`` for ``i`` in ``indices``, resized to ``out_size``."""
    jpegs = []
    for i in progress(indices, desc=desc, total=len(indices), unit='frame', leave=False):
        img = frames[i]
        if out_size != (img.shape[1], img.shape[0]):
            img = cv2.resize(img, out_size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise RuntimeError(f'JPEG encoding failed for frame {i}')
        jpegs.append(buf.tobytes())
    return jpegs


def _write_set(out: str, split: str, set_name: str, frame_range: Tuple[int, int],
               frames: Sequence[np.ndarray], labels: Sequence[FrameLabels],
               out_size: Tuple[int, int], scale: float, fps: float,
               jpeg_quality: int) -> Tuple[dict, List[List[dict]]]:
    """Write ``<set_name>/V000.seq`` and its ``.vbb`` for the video frames ``frame_range``
    (``[start, end)``); returns the set's ``splits.json`` entry and its vbb objects."""
    start, end = frame_range
    jpegs = _encode_jpegs(frames, range(start, end), out_size, jpeg_quality,
                          f'write {set_name} ({split})')
    seq_path = osp.join(out, set_name, 'V000.seq')
    vbb_path = osp.join(out, 'annotations', set_name, 'V000.vbb')
    os.makedirs(osp.dirname(seq_path), exist_ok=True)
    write_seq(seq_path, jpegs, out_size[0], out_size[1], fps=fps)
    vbb = to_vbb_frames(labels[start:end], scale, out_size)
    write_vbb(vbb_path, vbb)
    entry = dict(split=split, video_frames=[start, end - 1], num_frames=end - start,
                 seq=osp.relpath(seq_path, out), vbb=osp.relpath(vbb_path, out),
                 stats=label_stats(vbb, out_size[0]))
    return entry, vbb


def build_release(video: str,
                  out: str,
                  cfg: Optional[LabelerConfig] = None,
                  cache_dir: Optional[str] = None,
                  size: str = '640x480',
                  jpeg_quality: int = 90,
                  test_frac: float = 0.3,
                  val_frac: float = 0.1,
                  gap: int = 30,
                  force: bool = False,
                  verbose: bool = True) -> dict:
    """Label ``video`` and write the Caltech-format release under ``out`` (nothing is
    rewritten when ``out`` already holds the release of the same inputs, unless ``force``).

    Returns:
        The content of ``<out>/splits.json`` (layout, frame ranges, statistics).
    """
    cfg = cfg or LabelerConfig()
    vdig = file_digest(video)
    key = release_key(vdig, cfg, size=size, q=jpeg_quality, test_frac=test_frac,
                      val_frac=val_frac, gap=gap)
    info = None if force else _read_if_up_to_date(out, key)
    if info is not None:
        if verbose:
            print(f'release up to date in {out} (use --force to rebuild)')
            print_stats(info)
        return info
    t0 = time.time()
    labels_d, frames = _labels_and_frames(video, cfg, cache_dir, force)
    labels = labels_from_json(labels_d)
    src_h, src_w = frames[0].shape[:2]
    out_w, out_h, scale = _output_size(size, src_w, src_h)
    fps = _video_fps(video)
    splits = make_splits(len(frames), test_frac, val_frac, gap)
    info = dict(key=key, video=osp.abspath(video), video_sha1_16=vdig, source_size=[src_w, src_h],
                size=[out_w, out_h], scale=scale, fps=fps, num_video_frames=len(frames),
                gap=gap, labeler=cfg.to_dict(), height_model=labels_d['height_model'],
                far_band_source_px=labels_d['far_band'], sets={})
    all_vbb = []
    for split, set_name in SPLIT_SETS:
        info['sets'][set_name], vbb = _write_set(out, split, set_name, splits[split], frames,
                                                 labels, (out_w, out_h), scale, fps,
                                                 jpeg_quality)
        all_vbb.extend(vbb)
    info['stats_all_sets'] = label_stats(all_vbb, out_w)
    info['build_seconds'] = round(time.time() - t0, 1)
    _write_json(osp.join(out, 'splits.json'), info)
    if verbose:
        print(f'wrote the release to {out} in {info["build_seconds"]:.1f} s')
        print_stats(info)
    return info


def _write_json(path: str, obj: dict) -> None:
    """Write ``obj`` to ``path`` atomically (through ``path + '.part'``)."""
    with open(path + '.part', 'w') as fh:
        json.dump(obj, fh, indent=1)
    os.replace(path + '.part', path)


def print_stats(info: dict) -> None:
    """Print the layout and label statistics of a release (``splits.json`` content)."""
    print(f'frames {info["size"][0]}x{info["size"][1]} (scale {info["scale"]:.4f} of '
          f'{info["source_size"][0]}x{info["source_size"][1]}), gap {info["gap"]} frames')
    hdr = (f'{"set":6} {"split":5} {"video frames":>13} {"n":>4} {"person/f":>8} '
           f'{"ignore/f":>8} {"ign frac":>8} {"h min/med/max":>16} {"h>=50":>6}')
    print(hdr)
    rows = [(k, v['split'], v['video_frames'], v['stats']) for k, v in info['sets'].items()]
    rows.append(('all', '-', None, info['stats_all_sets']))
    for name, split, rng, s in rows:
        r = f'{rng[0]}-{rng[1]}' if rng else '-'
        hs = (f'{s.get("height_min", 0):.0f}/{s.get("height_median", 0):.0f}/'
              f'{s.get("height_max", 0):.0f}')
        print(f'{name:6} {split:5} {r:>13} {s["frames"]:>4} {s["person_per_frame"]:>8.2f} '
              f'{s["ignore_per_frame"]:>8.2f} {s["ignore_fraction"]:>8.3f} {hs:>16} '
              f'{s.get("frac_height_ge_50", 0):>6.2f}')
    print('ignore/f and ign frac exclude the far-field band (one full-width ignore box per '
          'frame, rows given in splits.json)')
