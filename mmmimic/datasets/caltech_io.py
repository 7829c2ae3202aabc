"""Reading and writing the Caltech Pedestrian file formats, without external tools.

Three formats (see ``docs/user_guides/caltech.md`` and the toolbox sources named below):

- ``.seq``: Norpix sequence of JPEG frames (toolbox ``videos/seqReaderPlugin.m``; in
  :mod:`.caltech_seq`, re-exported here).
- ``.vbb``: MATLAB v5 ``.mat`` holding the video annotation struct ``A`` (toolbox ``vbb.m``; in
  :mod:`.caltech_vbb`, re-exported here).
- bbGt text, version 0-3: one annotation file per image (toolbox ``bbGt.m``, ``bbSave``/``bbLoad``),
  also the format of the new annotations of Zhang et al. (CVPR 2016).

Objects are plain dicts so that the converter, the dataset, the metric and the tests share one
representation: ``lbl`` (str), ``pos`` ``[l, t, w, h]``, ``posv`` ``[l, t, w, h]`` (visible part,
all zeros when not given), ``occl`` (0/1); vbb objects add ``id`` (1-based track id), bbGt objects
add ``ign`` (0/1) and ``ang`` (degrees).

Also the naming conventions shared by the converter, the dataset and the scoring code (image ids
``setXX_VYYY_I%05d``, video files ``VYYY.seq``/``VYYY.vbb``, frame sampling presets).

Every reader raises ``ValueError`` naming the file and what is wrong with it (the line of a text
file, the frame and object of a vbb). Every file a user receives is untrusted, so the readers
refuse what would otherwise be read as something else without a word:

- numbers that are not plain ASCII decimals: Python's ``int()``/``float()`` read ``3_0`` and
  ``\u0663\u0660`` (Arabic-Indic digits) as 30; image ids and video names take ASCII digits only;
- boxes of zero or negative width or height (detections and ground-truth ``pos``), and visible
  boxes (``posv``) of negative width or height; negative ``x``/``y`` are accepted (the official
  annotations have boxes cut by the image border);
- bbGt ``occ``/``ign`` columns other than 0/1, a vbb label that is not a string, a vbb id,
  ``occl`` or ``nFrame`` that is not an integer number;
- an image list that names an image twice.

Every writer goes through :func:`mmmimic.fileio.atomic_output`: a temporary file in the target's
folder, renamed when complete, so an interrupted write leaves neither a partial file nor a
``.part``. numpy and scipy only (cv2 for the optional frame decode check): importable without
torch or mmdet.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmmimic.fileio import atomic_output
# the .seq and .vbb formats live in their own modules; their names are importable from here
from .caltech_seq import (SEQ_HEADER_SIZE, SEQ_JPEG_FORMATS, SEQ_MAGIC,  # noqa: F401
                          SEQ_PNG_FORMATS, SEQ_RAW_FORMATS, SeqReader, check_frame, write_seq)
from .caltech_vbb import (VBB_FIELDS, VBB_OBJ_FIELDS, _box_text, _fmt,  # noqa: F401
                          box_fault, read_vbb, write_vbb)

BBGT_HEADER = '% bbGt version='
#: number of tokens per object line for each bbGt version
BBGT_NUM_TOKENS = {0: 5, 1: 10, 2: 11, 3: 12}


#: ``setXX_VYYY_I%05d``: set, video and 0-based frame index of a Caltech image id (ASCII digits
#: only: a str pattern's ``\d`` would also match other scripts' digits)
CALTECH_IMG_ID = re.compile(r'^set(\d+)_V(\d+)_I(\d+)$', re.ASCII)
#: ``VYYY.seq`` / ``VYYY.vbb`` / ``VYYY.txt``: a video of a set folder
CALTECH_VIDEO_NAME = re.compile(r'^V(\d+)\.(seq|vbb|txt)$', re.ASCII)
#: a number of a text file: ASCII digits, optional sign, point and exponent, or nan/inf (refused
#: later with their own message). ``float()`` alone also takes ``3_0`` and non-ASCII digits.
NUMBER = re.compile(r'[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)',
                    re.ASCII | re.IGNORECASE)


def parse_number(token: str, where: str, line: Optional[str] = None) -> float:
    """``float(token)`` for a plain ASCII decimal number; anything else is refused.

    Args:
        token: the text of one number.
        where: names the file and line in the message (``'path:12'``).
        line: the whole line, quoted in the message.

    Raises:
        ValueError: ``'<where>: non-numeric value '3_0' in '<line>' (Python's float() would
            read it as 30.0: ...)'``.
    """
    if NUMBER.fullmatch(token) is not None:
        return float(token)
    try:
        read_as = f"; Python's float() would read it as {float(token)!r}, but only ASCII " \
                  f"digits without underscores are accepted"
    except ValueError:
        read_as = ''
    in_line = f' in {line.strip()!r}' if line is not None else ''
    raise ValueError(f'{where}: non-numeric value {token!r}{in_line}{read_as}')


#: frame sampling presets: sets, first 0-based frame, step (Caltech code 3.2.1 dbInfo)
FRAME_PRESETS: Dict[str, Dict] = {
    'train10x': dict(sets=tuple(range(0, 6)), start=2, step=3),
    'train1x': dict(sets=tuple(range(0, 6)), start=29, step=30),
    'test': dict(sets=tuple(range(6, 11)), start=29, step=30),
    # the vtest.avi mini-release (projects/vtest_mimic/tools/build_vtest.py): every frame
    # of its train (set00), validation (set01) and test (set02) parts. Every test frame counts:
    # at FPPI 1e-2 one false positive per 100 frames decides MR-2's low end, so fewer frames make
    # it coarser (neighbouring frames are alike: the vtest study resamples blocks of them)
    'vtest_train': dict(sets=(0, ), start=0, step=1),
    'vtest_val': dict(sets=(1, ), start=0, step=1),
    'vtest_test': dict(sets=(2, ), start=0, step=1),
}


def parse_img_id(img_id: str) -> Tuple[int, int, int]:
    """``'set06_V001_I00029'`` -> ``(6, 1, 29)`` (set, video, 0-based frame).

    Raises:
        ValueError: the id does not follow the Caltech naming.
    """
    m = CALTECH_IMG_ID.fullmatch(img_id)
    if m is None:
        raise ValueError(f'{img_id!r} is not a Caltech image id (setXX_VYYY_I%05d)')
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_video_name(path: str) -> int:
    """The video number of ``.../VYYY.seq`` (or ``.vbb``, ``.txt``): ``V012.seq`` -> 12.

    Raises:
        ValueError: the file name is not ``V<digits>.<seq|vbb|txt>`` (names the file).
    """
    m = CALTECH_VIDEO_NAME.fullmatch(osp.basename(path))
    if m is None:
        raise ValueError(f'{path}: not a Caltech video file name (expected V<number>.seq / .vbb / '
                         f'.txt, e.g. V000.seq); rename or remove it')
    return int(m.group(1))


def read_image_list(path: str) -> List[str]:
    """The image ids of an image list (``test.txt``: one ``setXX_VYYY_I%05d`` per line).

    Blank lines and surrounding spaces are ignored.

    Raises:
        ValueError: a line that is not a Caltech image id, or an id listed twice (it would be
            scored twice); names the file, the line(s) and the id.
    """
    ids: List[str] = []
    seen: Dict[str, int] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            img_id = line.strip()
            if not img_id:
                continue
            try:
                parse_img_id(img_id)
            except ValueError as e:
                raise ValueError(f'{path}:{lineno}: {e}') from None
            if img_id in seen:
                raise ValueError(f'{path}:{lineno}: image {img_id} is listed twice (lines '
                                 f'{seen[img_id]} and {lineno}); every image must be listed once, '
                                 f'or it is scored twice')
            seen[img_id] = lineno
            ids.append(img_id)
    return ids


# --------------------------------------------------------------------------------------------------
# bbGt text
# --------------------------------------------------------------------------------------------------

def write_bbgt(path: str, objects: Sequence[Dict], overwrite: bool = True) -> None:
    """Write one image's objects as a bbGt version 3 text file (toolbox ``bbGt('bbSave')``).

    Args:
        path: output text file.
        objects: dicts with ``lbl``, ``pos`` ``[l, t, w, h]`` and optionally ``occl`` (0),
            ``posv`` (zeros), ``ign`` (0), ``ang`` (0). Lines are ``lbl l t w h occ vl vt vw vh
            ign ang``; integral numbers are written as integers, others in shortest exact form.
        overwrite: replace an existing ``path`` (False: refuse it); written atomically.
    """
    lines = [BBGT_HEADER + '3']
    for o in objects:
        lbl = str(o['lbl'])
        if not lbl or any(c.isspace() for c in lbl):
            raise ValueError(f'write_bbgt({path!r}): label {lbl!r} must be one non-empty word')
        nums = (list(o['pos']) + [o.get('occl', 0)] + list(o.get('posv', [0, 0, 0, 0])) +
                [o.get('ign', 0), o.get('ang', 0)])
        lines.append(' '.join([lbl] + [_fmt(v) for v in nums]))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite, 'bbGt file') as tmp, open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def read_bbgt(path: str) -> List[Dict]:
    """Read a bbGt text file, versions 0 to 3 (toolbox ``bbGt('bbLoad')``).

    Args:
        path: the text file.

    Returns:
        list of dicts ``lbl``, ``pos``, ``occl``, ``posv``, ``ign``, ``ang`` (missing columns of
        older versions are 0).

    Raises:
        ValueError: bad header; a line with the wrong number of tokens, a non-number (also
            ``3_0`` or non-ASCII digits), a NaN/inf value, a ``pos`` of width or height <= 0,
            a ``posv`` of negative width or height, or ``occ``/``ign`` other than 0/1; the
            message names the file and the line.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    lines = text.splitlines()
    if not lines or not lines[0].startswith(BBGT_HEADER):
        raise ValueError(f'{path}: not a bbGt file (first line must be "{BBGT_HEADER}<0-3>", '
                         f'got {lines[0][:40] if lines else "an empty file"!r})')
    version = lines[0][len(BBGT_HEADER):].strip()
    if version not in ('0', '1', '2', '3'):
        raise ValueError(f'{path}: unsupported bbGt version in {lines[0]!r}')
    version = int(version)
    num_tokens = BBGT_NUM_TOKENS[version]
    objects = []
    for lineno, line in enumerate(lines[1:], start=2):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != num_tokens:
            raise ValueError(f'{path}:{lineno}: expected {num_tokens} tokens for bbGt version '
                             f'{version}, got {len(tokens)}: {line!r}')
        nums = ([parse_number(t, f'{path}:{lineno}', line) for t in tokens[1:]] +
                [0.0] * (12 - num_tokens))
        if not all(np.isfinite(nums)):
            raise ValueError(f'{path}:{lineno}: NaN/inf value in {line!r}')
        for key, box in (('pos', nums[0:4]), ('posv', nums[5:9])):
            bad = box_fault(box, visible=key == 'posv')
            if bad:
                raise ValueError(f'{path}:{lineno}: {tokens[0]!r} {key} [l, t, w, h] = '
                                 f'{_box_text(box)} has {bad}')
        for name, v in (('occ', nums[4]), ('ign', nums[9])):
            if v not in (0, 1):
                raise ValueError(f'{path}:{lineno}: {name} = {_fmt(v)} in {line!r}; it must be '
                                 f'0 or 1')
        objects.append(
            dict(
                lbl=tokens[0],
                pos=nums[0:4],
                occl=int(nums[4]),
                posv=nums[5:9],
                ign=int(nums[9]),
                ang=nums[10]))
    return objects


def bbgt_path(ann_dir: str, img_id: str) -> Optional[str]:
    """Find the bbGt file of image ``img_id`` in ``ann_dir``: ``<id>.txt`` (our converter, the new
    training annotations) or ``<id>.jpg.txt`` (the new test annotations). None if neither exists."""
    for name in (img_id + '.txt', img_id + '.jpg.txt'):
        p = osp.join(ann_dir, name)
        if osp.isfile(p):
            return p
    return None


# --------------------------------------------------------------------------------------------------
# detection result files (res/<alg>/setXX/VYYY.txt)
# --------------------------------------------------------------------------------------------------
def write_result_file(path: str, rows: np.ndarray, overwrite: bool = True) -> None:
    """Write one video's detections in the official layout: ``frame,x,y,w,h,score`` per line.

    Args:
        path: ``.../setXX/VYYY.txt``.
        rows: (n, 6) with the 1-based frame number first. Numbers are written in shortest exact
            form, so re-scoring the file gives the same result bit for bit.
        overwrite: replace an existing ``path`` (False: refuse it); written atomically.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite, 'result file') as tmp, open(tmp, 'w') as f:
        for r in rows.tolist():
            f.write(','.join([str(int(r[0]))] + [_fmt(v) for v in r[1:]]) + '\n')


def read_result_file(path: str) -> np.ndarray:
    """Read a result file (comma or whitespace separated, as MATLAB's ``load -ascii``).

    Returns:
        (n, 6) float64 ``[frame (1-based), x, y, w, h, score]``; (0, 6) for an empty file (a
        detector that found nothing in the video).

    Raises:
        ValueError: a line without 6 numbers, a non-number (also ``3_0`` or non-ASCII digits,
            which Python reads as 30), a NaN/inf value, a frame number that is not a positive
            integer (the toolbox's ``loadDt`` selects frames by ``ids == f`` with 1-based ``f``,
            so frame 0 or 29.5 would be dropped without a word), or a box of width or height
            <= 0 (dropped by the height filter, or matched as a resized box); names the file,
            the line and the value. Negative ``x``/``y`` and any finite score are accepted.
    """
    rows = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            tokens = line.replace(',', ' ').split()
            if not tokens:
                continue
            vals = [parse_number(t, f'{path}:{lineno}', line) for t in tokens]
            if len(vals) != 6:
                raise ValueError(f'{path}:{lineno}: expected 6 numbers (frame,x,y,w,h,score), '
                                 f'got {len(vals)}')
            if not all(np.isfinite(vals)):
                raise ValueError(f'{path}:{lineno}: NaN/inf value in {line.strip()!r}')
            if vals[0] < 1 or not vals[0].is_integer():
                raise ValueError(f'{path}:{lineno}: frame {tokens[0]} is not a 1-based frame '
                                 f'number (an integer >= 1; image I00029 is frame 30)')
            bad = box_fault(vals[1:5])
            if bad:
                raise ValueError(f'{path}:{lineno}: detection [x, y, w, h] = '
                                 f'{_box_text(vals[1:5])} has {bad}; refusing to score it')
            rows.append(vals)
    return np.array(rows, dtype=np.float64).reshape(-1, 6)
