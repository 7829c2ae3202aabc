# Copyright (c) mmmimic contributors. All rights reserved.
"""Build a Caltech-format pedestrian mini-release from OpenCV's sample video ``vtest.avi``.

The video (795 frames, 768x576, 10 fps, a fixed camera over a campus) ships in Debian's
``opencv-doc`` package.  It is labelled with the classical procedure of
:mod:`mmmimic.datasets.video_pedestrians` (no learned model) and written as::

    <out>/set00/V000.seq              train  (video frames 0-416 by default)
    <out>/set01/V000.seq              val    (447-526: carved from the training part)
    <out>/set02/V000.seq              test   (557-794: the last 30% of the video)
    <out>/annotations/setXX/V000.vbb  the matching annotations
    <out>/splits.json                 frame ranges, gaps, scale, label statistics

Splits are separated by gaps of 30 frames (3 s) so near-identical frames do not leak.
Frames are resized to Caltech's 640x480 by default (exactly 5/6 of 768x576), so the
unmodified Caltech border rule (5 px inside 640x480) applies; ``--size native`` keeps
768x576.  See ``docs/vtest_labels.md`` for the procedure and the measured label quality.

Example::

    python tools/dataset_converters/build_vtest.py --out data/vtest_caltech \\
        --show-dir /tmp/vtest_show
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

try:
    from mmmimic.datasets.caltech_io import SeqReader, read_vbb, write_seq, write_vbb
    from mmmimic.datasets.video_pedestrians import (GROUP, PERSON, FrameLabels,
                                                     LabelerConfig, VideoPedestrianLabeler,
                                                     iter_video_frames)
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from mmmimic.datasets.caltech_io import SeqReader, read_vbb, write_seq, write_vbb
    from mmmimic.datasets.video_pedestrians import (GROUP, PERSON, FrameLabels,
                                                     LabelerConfig, VideoPedestrianLabeler,
                                                     iter_video_frames)

#: bump when the labels or the release layout change, to invalidate caches
BUILD_VERSION = 1
VIDEO_NAME = 'vtest.avi'
DEB_PACKAGE = 'opencv-doc'
DEB_MEMBER = './usr/share/doc/opencv-doc/examples/data/vtest.avi'
SYSTEM_VIDEO = '/usr/share/doc/opencv-doc/examples/data/vtest.avi'
SPLIT_SETS = (('train', 'set00'), ('val', 'set01'), ('test', 'set02'))
SHOW_COLORS = {PERSON: (0, 200, 0)}
IGNORE_COLOR = (0, 140, 255)


def default_cache_dir() -> str:
    """``$MMMIMIC_CACHE`` or ``~/.cache/mmmimic``."""
    return os.environ.get('MMMIMIC_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmmimic'))


def _progress(iterable, desc: str, total: Optional[int] = None):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of mmengine
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit='frame', leave=False,
                disable=not sys.stderr.isatty() and os.environ.get('MMMIMIC_PROGRESS') != '1')


# ----------------------------------------------------------------------------------------
# Locating the video.


def fetch_from_apt(cache_dir: str) -> str:
    """``apt-get download opencv-doc`` into ``cache_dir`` and unpack only ``vtest.avi``.

    Returns:
        Path of the unpacked video.

    Raises:
        RuntimeError: apt-get / dpkg-deb are missing or the download failed.
    """
    dst = osp.join(cache_dir, DEB_PACKAGE, VIDEO_NAME)
    if osp.isfile(dst):
        return dst
    for tool in ('apt-get', 'dpkg-deb'):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f'{VIDEO_NAME} not found and `{tool}` is not available (not Debian/Ubuntu?). '
                f'Get {VIDEO_NAME} from the OpenCV sources (samples/data/{VIDEO_NAME}) or the '
                f'`{DEB_PACKAGE}` package and pass --video PATH.')
    os.makedirs(osp.dirname(dst), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=osp.dirname(dst)) as tmp:
        print(f'downloading {DEB_PACKAGE} with apt-get (about 100 MB) into {tmp} ...')
        proc = subprocess.run(['apt-get', 'download', DEB_PACKAGE], cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        debs = [f for f in os.listdir(tmp) if f.endswith('.deb')]
        if proc.returncode != 0 or not debs:
            raise RuntimeError(
                f'`apt-get download {DEB_PACKAGE}` failed (exit {proc.returncode}):\n'
                f'{proc.stdout[-2000:]}\nRun `apt-get update` first, or pass --video PATH.')
        deb = osp.join(tmp, debs[0])
        # dpkg-deb complains about the pipe we close early: its stderr is not interesting.
        tar_proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        found = False
        with tarfile.open(fileobj=tar_proc.stdout, mode='r|*') as tf:
            for member in tf:
                if member.name == DEB_MEMBER and member.isfile():
                    src = tf.extractfile(member)
                    with open(dst + '.part', 'wb') as fh:
                        shutil.copyfileobj(src, fh)
                    found = True
                    break
        tar_proc.stdout.close()
        tar_proc.wait()
        if not found:
            raise RuntimeError(f'{debs[0]} does not contain {DEB_MEMBER}; pass --video PATH')
        os.replace(dst + '.part', dst)
    return dst


def locate_video(video: Optional[str], cache_dir: str, allow_download: bool = True) -> str:
    """Find ``vtest.avi``: ``video`` if given, else the installed ``opencv-doc`` file, else
    the cached copy, else download ``opencv-doc`` with apt-get (when allowed).

    Raises:
        FileNotFoundError: ``video`` does not exist, or nothing was found and downloading is
            not allowed.
    """
    if video:
        if not osp.isfile(video):
            raise FileNotFoundError(f'--video {video!r} does not exist')
        return video
    for cand in (SYSTEM_VIDEO, osp.join(cache_dir, DEB_PACKAGE, VIDEO_NAME)):
        if osp.isfile(cand):
            return cand
    if not allow_download:
        raise FileNotFoundError(
            f'{VIDEO_NAME} not found (looked at {SYSTEM_VIDEO} and the cache {cache_dir}); '
            f'install `{DEB_PACKAGE}`, pass --video PATH, or allow the apt-get download.')
    return fetch_from_apt(cache_dir)


def file_digest(path: str) -> str:
    """sha1 of a file's contents (hex, 16 chars)."""
    h = hashlib.sha1()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------
# Splits and conversion.


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
        for box, lbl, tid in zip(fl.boxes, fl.labels, fl.track_ids):
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


# ----------------------------------------------------------------------------------------
# Labelling (cached) and writing.


def _labels_to_json(result: dict, num_frames: int, img_shape: Tuple[int, int]) -> dict:
    hm = result['height_model']
    return dict(
        num_frames=num_frames,
        img_shape=list(img_shape),
        height_model=dict(slope=hm.slope, intercept=hm.intercept, num_blobs=hm.num_blobs,
                          person_fill=hm.person_fill),
        far_band=result['far_band'],
        frames=[dict(boxes=[[round(float(v), 2) for v in b] for b in fl.boxes],
                     labels=list(fl.labels), ids=[int(i) for i in fl.track_ids])
                for fl in result['frames']])


def _labels_from_json(d: dict) -> List[FrameLabels]:
    return [
        FrameLabels(np.asarray(f['boxes'], dtype=np.float64).reshape(-1, 4), list(f['labels']),
                    list(f['ids'])) for f in d['frames']
    ]


def _cfg_digest(cfg: LabelerConfig) -> str:
    """Digest of the labeller parameters and of the labeller's source code, so that a
    changed procedure never reuses stale cached labels."""
    import mmmimic.datasets.video_pedestrians as vp
    with open(vp.__file__, 'rb') as fh:
        code = fh.read()
    blob = json.dumps(cfg.to_dict(), sort_keys=True).encode() + code
    return hashlib.sha1(blob).hexdigest()[:10]


def label_video(video: str, cfg: LabelerConfig, cache_dir: Optional[str], force: bool = False,
                frames: Optional[List[np.ndarray]] = None) -> Tuple[dict, List[np.ndarray]]:
    """Label a video, reusing ``<cache_dir>/vtest_labels/<digests>.json`` when present.

    Args:
        video: the video file.
        cfg: labeller parameters (part of the cache key).
        cache_dir: cache folder; None disables caching.
        force: relabel even when cached.
        frames: already decoded frames (decoded here when None and needed).

    Returns:
        (labels json dict, frames or None when the labels came from the cache and frames
        were not given).
    """
    key = f'{file_digest(video)}-{_cfg_digest(cfg)}-v{BUILD_VERSION}'
    path = osp.join(cache_dir, 'vtest_labels', f'labels-{key}.json') if cache_dir else None
    if path and osp.isfile(path) and not force:
        with open(path) as fh:
            return json.load(fh), frames
    if frames is None:
        frames = decode_video(video)
    print(f'labelling {len(frames)} frames (HOG splitting {"on" if cfg.use_hog else "off"}) ...',
          flush=True)
    t0 = time.time()
    result = VideoPedestrianLabeler(cfg).label(frames, progress=_progress)
    d = _labels_to_json(result, len(frames), frames[0].shape[:2])
    d['seconds'] = round(time.time() - t0, 1)
    print(f'labelled {len(frames)} frames in {d["seconds"]:.1f} s; height model: '
          f'h = {result["height_model"].slope:.3f} * foot_row + '
          f'{result["height_model"].intercept:.1f} (from {result["height_model"].num_blobs} '
          f'clean blobs); far band: {result["far_band"]}')
    if path:
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path + '.part', 'w') as fh:
            json.dump(d, fh)
        os.replace(path + '.part', path)
    return d, frames


def decode_video(video: str) -> List[np.ndarray]:
    """Decode every frame of ``video`` (BGR uint8).

    Raises:
        RuntimeError: the video has no decodable frame.
    """
    cap = cv2.VideoCapture(video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    frames = list(_progress(iter_video_frames(video), 'decode', total or None))
    if not frames:
        raise RuntimeError(f'no frame could be decoded from {video!r}')
    return frames


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
    """Label ``video`` and write the Caltech-format release under ``out``.

    Returns:
        The content of ``<out>/splits.json`` (layout, frame ranges, statistics).
    """
    cfg = cfg or LabelerConfig()
    vdig = file_digest(video)
    key_d = dict(video=vdig, cfg=_cfg_digest(cfg), size=size, q=jpeg_quality,
                 test_frac=test_frac, val_frac=val_frac, gap=gap, v=BUILD_VERSION)
    key = hashlib.sha1(json.dumps(key_d, sort_keys=True).encode()).hexdigest()[:16]
    info_path = osp.join(out, 'splits.json')
    if not force and osp.isfile(info_path) and all(map(osp.isfile, _release_files(out))):
        with open(info_path) as fh:
            info = json.load(fh)
        if info.get('key') == key:
            if verbose:
                print(f'release up to date in {out} (use --force to rebuild)')
                print_stats(info)
            return info
    t0 = time.time()
    labels_d, frames = label_video(video, cfg, cache_dir, force=force)
    if frames is None:
        frames = decode_video(video)
    n = len(frames)
    if n != labels_d['num_frames']:
        raise RuntimeError(f'{video}: decoded {n} frames but the labels have '
                           f'{labels_d["num_frames"]}; rerun with --force')
    labels = _labels_from_json(labels_d)
    src_h, src_w = frames[0].shape[:2]
    out_w, out_h = parse_size(size, (src_w, src_h))
    sx, sy = out_w / src_w, out_h / src_h
    if abs(sx - sy) > 1e-6:
        raise ValueError(f'--size {size} changes the aspect ratio of {src_w}x{src_h}')
    cap = cv2.VideoCapture(video)
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
    cap.release()
    splits = make_splits(n, test_frac, val_frac, gap)
    info = dict(key=key, video=osp.abspath(video), video_sha1_16=vdig, source_size=[src_w, src_h],
                size=[out_w, out_h], scale=sx, fps=fps, num_video_frames=n, gap=gap,
                labeler=cfg.to_dict(), height_model=labels_d['height_model'],
                far_band_source_px=labels_d['far_band'], sets={})
    all_vbb = []
    for split, set_name in SPLIT_SETS:
        start, end = splits[split]
        jpegs = []
        for i in _progress(range(start, end), f'write {set_name} ({split})', end - start):
            img = frames[i]
            if (out_w, out_h) != (src_w, src_h):
                img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for frame {i}')
            jpegs.append(buf.tobytes())
        seq_path = osp.join(out, set_name, 'V000.seq')
        vbb_path = osp.join(out, 'annotations', set_name, 'V000.vbb')
        os.makedirs(osp.dirname(seq_path), exist_ok=True)
        write_seq(seq_path, jpegs, out_w, out_h, fps=fps)
        vbb = to_vbb_frames(labels[start:end], sx, (out_w, out_h))
        write_vbb(vbb_path, vbb)
        all_vbb.extend(vbb)
        info['sets'][set_name] = dict(
            split=split, video_frames=[start, end - 1], num_frames=end - start,
            seq=osp.relpath(seq_path, out), vbb=osp.relpath(vbb_path, out),
            stats=label_stats(vbb, out_w))
    info['stats_all_sets'] = label_stats(all_vbb, out_w)
    info['build_seconds'] = round(time.time() - t0, 1)
    with open(info_path + '.part', 'w') as fh:
        json.dump(info, fh, indent=1)
    os.replace(info_path + '.part', info_path)
    if verbose:
        print(f'wrote the release to {out} in {info["build_seconds"]:.1f} s')
        print_stats(info)
    return info


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


def render_samples(out: str, show_dir: str, num: int = 12) -> List[str]:
    """Render ``num`` frames spread over all sets of a written release, read back through
    :class:`SeqReader` / :func:`read_vbb`, with person boxes in green and ignore regions in
    orange.  Returns the written PNG paths."""
    with open(osp.join(out, 'splits.json')) as fh:
        info = json.load(fh)
    items = []
    for set_name, s in info['sets'].items():
        for f in range(s['num_frames']):
            items.append((set_name, f, s['video_frames'][0] + f))
    if not items or num <= 0:
        return []
    pick = np.unique(np.linspace(0, len(items) - 1, min(num, len(items))).round().astype(int))
    os.makedirs(show_dir, exist_ok=True)
    paths = []
    cache: Dict[str, tuple] = {}
    for k in pick:
        set_name, f, vf = items[k]
        if set_name not in cache:
            s = info['sets'][set_name]
            cache[set_name] = (SeqReader(osp.join(out, s['seq'])),
                               read_vbb(osp.join(out, s['vbb'])))
        reader, vbb = cache[set_name]
        img = cv2.imdecode(np.frombuffer(reader[f], np.uint8), cv2.IMREAD_COLOR)
        for o in vbb[f]:
            x, y, w, h = (int(round(v)) for v in o['pos'])
            person = o['lbl'] == PERSON
            col = SHOW_COLORS.get(o['lbl'], IGNORE_COLOR)
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), col, 2 if person else 1)
            cv2.putText(img, f'{o["lbl"]} {o["id"]}', (x, max(8, y - 3)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.3, col, 1, cv2.LINE_AA)
        cv2.putText(img, f'{set_name}_V000_I{f:05d} (video frame {vf})', (4, img.shape[0] - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        p = osp.join(show_dir, f'{set_name}_V000_I{f:05d}.png')
        cv2.imwrite(p, img)
        paths.append(p)
    for reader, _ in cache.values():
        reader.close()
    return paths


def hog_available() -> bool:
    """Whether this OpenCV build has the classical HOG people detector."""
    return hasattr(cv2, 'HOGDescriptor') and hasattr(cv2,
                                                     'HOGDescriptor_getDefaultPeopleDetector')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build a Caltech-format pedestrian mini-release (seq + vbb) from OpenCV\'s '
        'vtest.avi with classical, model-independent labels')
    parser.add_argument('--video', help='path of vtest.avi (default: the installed opencv-doc '
                        'file, else a cached copy, else apt-get download opencv-doc)')
    parser.add_argument('--out', default='data/vtest_caltech', help='output folder')
    parser.add_argument('--cache-dir', default=None,
                        help='cache folder (default $MMMIMIC_CACHE or ~/.cache/mmmimic)')
    parser.add_argument('--no-download', action='store_true',
                        help='never run apt-get; fail if the video is not found')
    parser.add_argument('--size', default='640x480',
                        help='output frame size WIDTHxHEIGHT (same aspect) or "native"')
    parser.add_argument('--jpeg-quality', type=int, default=90)
    parser.add_argument('--test-frac', type=float, default=0.3)
    parser.add_argument('--val-frac', type=float, default=0.1)
    parser.add_argument('--gap', type=int, default=30, help='frames dropped between splits')
    parser.add_argument('--hog', choices=('auto', 'on', 'off'), default='auto',
                        help='split too-wide blobs where OpenCV\'s HOG people detector '
                        'agrees (auto: on when cv2.HOGDescriptor exists, i.e. OpenCV 4.x)')
    parser.add_argument('--far-height', type=float, default=LabelerConfig.far_height,
                        help='people expected smaller than this (source px) are in the '
                        'far-field ignore band')
    parser.add_argument('--force', action='store_true', help='relabel and rewrite everything')
    parser.add_argument('--show-dir', help='render sampled frames with boxes to PNG here')
    parser.add_argument('--show-num', type=int, default=12, help='frames to render')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cache_dir = args.cache_dir or default_cache_dir()
    video = locate_video(args.video, cache_dir, allow_download=not args.no_download)
    print(f'video: {video}')
    use_hog = args.hog == 'on' or (args.hog == 'auto' and hog_available())
    if args.hog == 'auto' and not use_hog:
        print('warning: cv2.HOGDescriptor is missing (OpenCV 5?): labelling without HOG '
              'splitting of wide blobs (more groups become ignore regions)')
    cfg = LabelerConfig(use_hog=use_hog, far_height=args.far_height)
    info = build_release(video, args.out, cfg=cfg, cache_dir=cache_dir, size=args.size,
                         jpeg_quality=args.jpeg_quality, test_frac=args.test_frac,
                         val_frac=args.val_frac, gap=args.gap, force=args.force)
    if args.show_dir:
        paths = render_samples(args.out, args.show_dir, args.show_num)
        print(f'rendered {len(paths)} frames to {args.show_dir}')
    return info


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)
