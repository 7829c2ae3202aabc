# Copyright (c) mmmimic contributors. All rights reserved.
"""Labelling a video file with a json cache keyed by the video, the parameters and the
labeller's source code."""
import hashlib
import json
import os
import os.path as osp
import time
from typing import List, Optional, Tuple

import numpy as np

from mmmimic.utils.progress_bar import progress

from . import blob_rules, foreground, hog, labeler, perspective, structures, tracking
from .labeler import VideoPedestrianLabeler
from .source import file_digest
from .structures import FrameLabels, LabelerConfig
from .video import decode_video

#: bump when the labels or the release layout change, to invalidate caches
BUILD_VERSION = 1
#: the modules whose source code decides the labels (part of the cache key)
LABELLER_MODULES = (structures, foreground, perspective, blob_rules, tracking, hog, labeler)


def labels_to_json(result: dict, num_frames: int, img_shape: Tuple[int, int]) -> dict:
    """The json form of :meth:`VideoPedestrianLabeler.label`'s result (boxes rounded to
    0.01 px; the background and raw blobs are not kept)."""
    hm = result['height_model']
    return dict(
        num_frames=num_frames,
        img_shape=list(img_shape),
        height_model=dict(slope=hm.slope, intercept=hm.intercept, num_blobs=hm.num_blobs,
                          person_fill=hm.person_fill),
        far_band=result['far_band'],
        frames=[dict(boxes=[[round(float(v), 2) for v in b] for b in fl.boxes],
                     labels=list(fl.labels), ids=[int(i) for i in fl.object_ids])
                for fl in result['frames']])


def labels_from_json(d: dict) -> List[FrameLabels]:
    """The per-frame labels of a :func:`labels_to_json` dict."""
    return [
        FrameLabels(np.asarray(f['boxes'], dtype=np.float64).reshape(-1, 4), list(f['labels']),
                    list(f['ids'])) for f in d['frames']
    ]


def labeller_digest(cfg: LabelerConfig) -> str:
    """Digest of the labeller parameters and of the source code of
    :data:`LABELLER_MODULES`, so that a changed procedure never reuses stale cached labels."""
    code = b''
    for module in LABELLER_MODULES:
        with open(module.__file__, 'rb') as fh:
            code += fh.read()
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
    key = f'{file_digest(video)}-{labeller_digest(cfg)}-v{BUILD_VERSION}'
    path = osp.join(cache_dir, 'vtest_labels', f'labels-{key}.json') if cache_dir else None
    if path and osp.isfile(path) and not force:
        with open(path) as fh:
            return json.load(fh), frames
    if frames is None:
        frames = decode_video(video)
    print(f'labelling {len(frames)} frames (HOG splitting {"on" if cfg.use_hog else "off"}) ...',
          flush=True)
    t0 = time.time()
    result = VideoPedestrianLabeler(cfg).label(
        frames, progress=lambda it, desc, total: progress(it, desc=desc, total=total, unit='frame',
                                                          leave=False))
    d = labels_to_json(result, len(frames), frames[0].shape[:2])
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
