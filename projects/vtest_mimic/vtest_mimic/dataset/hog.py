# Copyright (c) mmmimic contributors. All rights reserved.
"""Optional agreement of OpenCV's classical HOG people detector before a too-wide blob is split
into persons."""
from typing import List

import cv2
import numpy as np

from .structures import LabelerConfig


class HogSplitter:
    """Split a too-wide blob into persons where OpenCV's default HOG people detector finds
    at least two non-overlapping people of the expected size inside it.

    Args:
        cfg: labeller parameters.
    """

    def __init__(self, cfg: LabelerConfig):
        if not hasattr(cv2, 'HOGDescriptor'):
            raise RuntimeError('cv2.HOGDescriptor is not available in this OpenCV build '
                               '(removed in OpenCV 5): install opencv-python<5 or run '
                               'without --hog')
        self.cfg = cfg
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def split(self, frame: np.ndarray, mask: np.ndarray, blob: np.ndarray,
              eh: float) -> List[np.ndarray]:
        """Return the person sub-blobs of ``blob`` (empty list: no agreement).

        Args:
            frame: the BGR frame.
            mask: its foreground mask (the parts are cut from it).
            blob: ``[x, y, w, h, area]`` of the too-wide blob.
            eh: expected person height at the blob's foot row.
        """
        centers = self._person_centers(frame, blob, eh)
        if len(centers) < 2:
            return []
        return self._cut(mask, blob, sorted(centers))

    def _person_centers(self, frame: np.ndarray, blob: np.ndarray, eh: float) -> List[float]:
        """Column centres (frame pixels) of the HOG people of the expected size inside
        ``blob``, at least ``0.25 * eh`` apart (the higher score wins)."""
        img_h, img_w = frame.shape[:2]
        x, y, w, h = (int(v) for v in blob[:4])
        # The default detector sees a ~96 px person in a 64x128 window.
        s = 96.0 / max(eh, 1.0)
        mx, my = int(0.3 * eh) + 4, int(0.2 * eh) + 4
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(img_w, x + w + mx), min(img_h, y + h + my)
        crop = cv2.resize(frame[y0:y1, x0:x1], None, fx=s, fy=s,
                          interpolation=cv2.INTER_LINEAR)
        if crop.shape[0] < 128 or crop.shape[1] < 64:
            return []
        rects, weights = self.hog.detectMultiScale(crop, winStride=(4, 4), padding=(8, 8),
                                                   scale=1.05)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights).reshape(-1)
        dets = []
        for (rx, ry, rw, rh), sc in zip(rects, weights):
            if sc < self.cfg.hog_thr:
                continue
            # The person occupies the central ~(0.5 x 0.75) of the window.
            cx = x0 + (rx + rw / 2.0) / s
            ph = 0.75 * rh / s
            if not (0.7 * eh <= ph <= 1.4 * eh) or not (x <= cx <= x + w):
                continue
            dets.append((float(sc), cx))
        dets.sort(key=lambda d: (-d[0], d[1]))
        centers: List[float] = []
        for _, cx in dets:
            if all(abs(cx - c) >= 0.25 * eh for c in centers):
                centers.append(cx)
        return centers

    @staticmethod
    def _cut(mask: np.ndarray, blob: np.ndarray, centers: List[float]) -> List[np.ndarray]:
        """Cut ``blob`` midway between the sorted ``centers``; each part is the bounding box
        of its foreground pixels (empty list when a part has none)."""
        x, y, w, h = (int(v) for v in blob[:4])
        cuts = [x] + [int(round((a + b) / 2)) for a, b in zip(centers, centers[1:])] + [x + w]
        parts = []
        sub = mask[y:y + h]
        for c0, c1 in zip(cuts, cuts[1:]):
            ys, xs = np.nonzero(sub[:, c0:c1])
            if len(xs) == 0:
                return []
            parts.append(np.array([c0 + xs.min(), y + ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1, len(xs)], dtype=np.int64))
        return parts


def hog_available() -> bool:
    """Whether this OpenCV build has the classical HOG people detector."""
    return hasattr(cv2, 'HOGDescriptor') and hasattr(cv2,
                                                     'HOGDescriptor_getDefaultPeopleDetector')


def resolve_hog(mode: str) -> bool:
    """Whether to split wide blobs with HOG for ``mode`` ``'on'``, ``'off'`` or ``'auto'``
    (on when :func:`hog_available`; a warning is printed when auto finds it missing).

    Raises:
        ValueError: ``mode`` is none of the three.
    """
    if mode not in ('auto', 'on', 'off'):
        raise ValueError(f'hog mode must be auto, on or off, got {mode!r}')
    use_hog = mode == 'on' or (mode == 'auto' and hog_available())
    if mode == 'auto' and not use_hog:
        print('warning: cv2.HOGDescriptor is missing (OpenCV 5?): labelling without HOG '
              'splitting of wide blobs (more groups become ignore regions)')
    return use_hog
