# Copyright (c) mmmimic contributors. All rights reserved.
"""Rendering sampled frames of a written vtest release with their boxes, read back from the
``.seq`` / ``.vbb`` files."""
import json
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

from mmmimic.datasets.caltech_io import SeqReader, read_vbb
from .structures import PERSON

SHOW_COLORS = {PERSON: (0, 200, 0)}
IGNORE_COLOR = (0, 140, 255)


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
