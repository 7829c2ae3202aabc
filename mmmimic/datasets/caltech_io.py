"""Reading and writing the Caltech Pedestrian file formats, without external tools.

Three formats (see ``docs/caltech.md`` and the toolbox sources named below):

- ``.seq``: Norpix sequence of JPEG frames (toolbox ``videos/seqReaderPlugin.m``).
- ``.vbb``: MATLAB v5 ``.mat`` holding the video annotation struct ``A`` (toolbox ``vbb.m``).
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
import struct
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mmmimic.fileio import atomic_output

SEQ_MAGIC = 0xFEED
SEQ_HEADER_SIZE = 1024
#: image formats whose frames are stored as variable-size compressed images
SEQ_JPEG_FORMATS = (102, 201)
SEQ_PNG_FORMATS = (1, 2)
SEQ_RAW_FORMATS = (100, 200, 101)

VBB_FIELDS = ('nFrame', 'objLists', 'maxObj', 'objInit', 'objLbl', 'objStr', 'objEnd', 'objHide',
              'altered', 'log', 'logLen')
VBB_OBJ_FIELDS = ('id', 'pos', 'occl', 'lock', 'posv')

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


def _box_text(box: Sequence[float]) -> str:
    return '[' + ', '.join(_fmt(v) for v in box) + ']'


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
# .seq
# --------------------------------------------------------------------------------------------------
def write_seq(path: str,
              jpeg_frames: Sequence[bytes],
              width: int,
              height: int,
              fps: float = 30.0,
              overwrite: bool = True) -> None:
    """Write JPEG frames as a Norpix ``.seq`` file (version 3, image format 102).

    Each frame is stored as a uint32 size (its own 4 bytes included), the JPEG bytes and an
    8-byte timestamp (uint32 seconds, uint16 milliseconds, 2 bytes padding), as in Caltech's files.

    Args:
        path: output file.
        jpeg_frames: encoded JPEG images (``FF D8 ... FF D9``), e.g. from ``cv2.imencode``.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate stored in the header; timestamps are ``i / fps`` seconds.
        overwrite: replace an existing ``path`` (False: refuse it). The file is written
            atomically (:func:`mmmimic.fileio.atomic_output`).
    """
    header = bytearray(SEQ_HEADER_SIZE)
    struct.pack_into('<I', header, 0, SEQ_MAGIC)
    name = 'Norpix seq'.encode('utf-16-le')
    header[4:4 + len(name)] = name
    struct.pack_into('<iI', header, 28, 3, SEQ_HEADER_SIZE)
    true_size = 0
    for i, jpg in enumerate(jpeg_frames):
        if bytes(jpg[:2]) != b'\xff\xd8':
            raise ValueError(f'write_seq({path!r}): frame {i} is not a JPEG (no FF D8 marker)')
        true_size = max(true_size, len(jpg) + 4 + 8)
    struct.pack_into('<9I', header, 548, width, height, 24, 8, width * height * 3, 102,
                     len(jpeg_frames), 0, true_size)
    struct.pack_into('<d', header, 584, float(fps))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite, '.seq file') as tmp, open(tmp, 'wb') as f:
        f.write(header)
        for i, jpg in enumerate(jpeg_frames):
            t = i / fps
            sec = int(t)
            f.write(struct.pack('<I', len(jpg) + 4))
            f.write(bytes(jpg))
            f.write(struct.pack('<IHH', sec, int(round((t - sec) * 1000)) % 1000, 0))


class SeqReader:
    """Random access to the frames of a Norpix ``.seq`` file (JPEG or PNG frames).

    The whole frame index is built (and checked) on construction, so a truncated or corrupt file
    fails before any frame is used.

    Args:
        path: the ``.seq`` file.

    Attributes:
        width, height, num_frames, fps: from the header; ``num_frames`` is the number of frames
            actually present (it is an error for the file to hold fewer than the header says).
        image_format: the Norpix image format code (102/201 JPEG, 1/2 PNG).
        extra: bytes after each image (8 or 16), detected once as the toolbox does.

    Raises:
        ValueError: not a seq file, unsupported image format, or truncated/corrupt frames; the
            message names the file and the frame at fault.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = None  # set first: __del__ runs even when the header check below fails
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            header = f.read(SEQ_HEADER_SIZE)
            if len(header) < SEQ_HEADER_SIZE:
                raise ValueError(f'{path}: not a .seq file (only {len(header)} bytes, the header '
                                 f'alone has {SEQ_HEADER_SIZE})')
            magic, = struct.unpack_from('<I', header, 0)
            if magic != SEQ_MAGIC:
                raise ValueError(f'{path}: not a .seq file (magic number {magic:#x}, '
                                 f'expected {SEQ_MAGIC:#x})')
            self.version, header_size = struct.unpack_from('<iI', header, 28)
            (self.width, self.height, self.bit_depth, _, self.image_size_bytes, self.image_format,
             num_frames, _, _) = struct.unpack_from('<9I', header, 548)
            self.fps, = struct.unpack_from('<d', header, 584)
            if self.image_format in SEQ_RAW_FORMATS:
                raise ValueError(f'{path}: raw image format {self.image_format} is not supported '
                                 f'(only JPEG 102/201 and PNG 1/2)')
            if self.image_format not in SEQ_JPEG_FORMATS + SEQ_PNG_FORMATS:
                raise ValueError(f'{path}: unknown image format {self.image_format}')
            self._offsets, self._sizes, self.extra = self._index(f, size, num_frames)
        self.num_frames = len(self._offsets)

    def _index(self, f, size: int, num_frames: int):
        offsets = np.zeros(num_frames, dtype=np.int64)
        sizes = np.zeros(num_frames, dtype=np.int64)
        magic = b'\xff\xd8' if self.image_format in SEQ_JPEG_FORMATS else b'\x89P'
        pos, extra = SEQ_HEADER_SIZE, 8
        for i in range(num_frames):
            f.seek(pos)
            raw = f.read(4)
            if len(raw) < 4:
                raise ValueError(f'{self.path}: truncated: the header announces {num_frames} '
                                 f'frames but the file ends before frame {i} (at byte {pos})')
            n, = struct.unpack('<I', raw)
            if n <= 4 or pos + n > size:
                raise ValueError(f'{self.path}: frame {i} extends past end of file (size field '
                                 f'{n} at byte {pos}, file has {size} bytes)')
            if f.read(2) != magic:
                raise ValueError(f'{self.path}: frame {i} at byte {pos + 4} is not a '
                                 f'{"JPEG" if magic[0] == 0xFF else "PNG"} image')
            offsets[i], sizes[i] = pos + 4, n - 4
            if i == 0:
                # seqReaderPlugin: 16 bytes of extra data if the uint32 after the timestamp is 0
                f.seek(pos + n + 8)
                nxt = f.read(4)
                extra = 16 if (len(nxt) == 4 and struct.unpack('<I', nxt)[0] == 0) else 8
            pos += n + extra
        return offsets, sizes, extra

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> bytes:
        if index < 0:
            index += self.num_frames
        if not 0 <= index < self.num_frames:
            raise IndexError(f'{self.path}: frame {index} out of range (0..{self.num_frames - 1})')
        if self._file is None:
            self._file = open(self.path, 'rb')
        self._file.seek(int(self._offsets[index]))
        return self._file.read(int(self._sizes[index]))

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.num_frames):
            yield self[i]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> 'SeqReader':
        return self

    def __exit__(self, *args) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_file'] = None
        return state


def check_frame(data: bytes, where: str, decode: bool = True) -> None:
    """Check that one stored frame is a whole image before it is copied out of a ``.seq``.

    JPEG: starts with the SOI marker ``FF D8`` and ends with the EOI marker ``FF D9`` (zero
    padding after it is allowed), which catches truncated and overwritten frames. PNG: starts
    with the PNG signature. With ``decode``, the frame is also decoded by OpenCV at 1/8 scale in
    grayscale (the cheap path: about 3 ms for a 640x480 frame), which catches a corrupt header,
    Huffman tables or a body cut short. A JPEG has no checksum: flipped bits inside the
    compressed body still decode and cannot be detected.

    Args:
        data: the frame's bytes.
        where: names the frame in the message (file and frame index).
        decode: also decode the image.

    Raises:
        ValueError: naming ``where`` and the fault.
    """
    head = bytes(data[:8])
    if head[:2] == b'\xff\xd8':
        tail = bytes(data).rstrip(b'\x00')[-2:]
        if tail != b'\xff\xd9':
            raise ValueError(f'{where}: corrupt JPEG: no end marker FF D9 (ends with '
                             f'{tail.hex(" ")}; truncated or overwritten frame of {len(data)} '
                             f'bytes)')
    elif head != b'\x89PNG\r\n\x1a\n':
        raise ValueError(f'{where}: not a JPEG (FF D8) or PNG image (starts with '
                         f'{head[:4].hex(" ")})')
    if decode:
        import cv2
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if img is None or img.size == 0:
            raise ValueError(f'{where}: corrupt image: OpenCV cannot decode its {len(data)} bytes')


# --------------------------------------------------------------------------------------------------
# .vbb
# --------------------------------------------------------------------------------------------------
def _describe(arr: np.ndarray) -> str:
    kind = {'U': 'text', 'S': 'bytes', 'O': 'a cell/struct'}.get(arr.dtype.kind, arr.dtype.name)
    return f'{arr.ravel()[:4].tolist()!r} ({kind})'


def _numeric(value, what: str) -> np.ndarray:
    """``value`` as a flat numeric array; text (which ``int()``/``float()`` would parse) and
    cells are refused."""
    arr = np.asarray(value)
    if arr.dtype.kind not in 'biuf':
        raise ValueError(f'{what} must be a number, got {_describe(arr)}')
    return arr.ravel()


def _mat_int(value, what: str, lo: int = 0, hi: Optional[int] = None) -> int:
    """The integer held by a 1x1 numeric MATLAB value, within ``[lo, hi]``."""
    arr = _numeric(value, what)
    if arr.size != 1:
        raise ValueError(f'{what} must be one number, got {arr.size}: {_describe(arr)}')
    v = float(arr[0])
    if not (np.isfinite(v) and v.is_integer() and v >= lo and (hi is None or v <= hi)):
        rng = f'{lo}..{hi}' if hi is not None else f'>= {lo}'
        raise ValueError(f'{what} must be an integer {rng}, got {arr[0].item()!r}')
    return int(v)


def _xywh(value, name: str, path: str) -> List[float]:
    arr = _numeric(value, f'{path}: {name}').astype(np.float64)
    if arr.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    if arr.size != 4:
        raise ValueError(f'{path}: {name} must have 4 numbers [l, t, w, h], got {arr.tolist()}')
    return arr.tolist()


def write_vbb(path: str, frames: Sequence[Sequence[Dict]], overwrite: bool = True) -> None:
    """Write a vbb 1.4 annotation (MATLAB v5 ``.mat`` holding struct ``A``) with scipy.

    Args:
        path: output ``.vbb`` file.
        frames: ``frames[f]`` lists the objects of the 0-based frame ``f``; each a dict with
            ``id`` (int >= 1, track id), ``lbl`` (``person``, ``people``, ``person?``,
            ``person-fa``), ``pos`` ``[l, t, w, h]``, ``posv`` (all zeros if none, may be
            omitted) and ``occl`` (0/1, may be omitted). Every object of one id has one label.
        overwrite: replace an existing ``path`` (False: refuse it); written atomically.
    """
    from scipy.io import savemat

    n_frame = len(frames)
    labels: Dict[int, str] = {}
    first: Dict[int, int] = {}
    last: Dict[int, int] = {}
    obj_dtype = [(k, 'O') for k in VBB_OBJ_FIELDS]
    obj_lists = np.empty((1, n_frame), dtype=object)
    for f, objs in enumerate(frames):
        if len(objs) == 0:
            obj_lists[0, f] = np.zeros((0, 0))
            continue
        arr = np.empty((1, len(objs)), dtype=obj_dtype)
        for j, o in enumerate(objs):
            oid = int(o['id'])
            if oid < 1:
                raise ValueError(f'write_vbb({path!r}): frame {f} object {j}: id must be >= 1')
            if labels.setdefault(oid, o['lbl']) != o['lbl']:
                raise ValueError(f'write_vbb({path!r}): id {oid} has labels '
                                 f'{labels[oid]!r} and {o["lbl"]!r}')
            first.setdefault(oid, f)
            last[oid] = f
            arr[0, j] = (np.array([[float(oid)]]),
                         np.array([_xywh(o['pos'], 'pos', path)]),
                         np.array([[float(o.get('occl', 0))]]),
                         np.array([[0.0]]),
                         np.array([_xywh(o.get('posv', [0, 0, 0, 0]), 'posv', path)]))
        obj_lists[0, f] = arr
    max_obj = max(labels) if labels else 0
    obj_lbl = np.empty((1, max_obj), dtype=object)
    obj_init = np.zeros((1, max_obj))
    obj_str = np.zeros((1, max_obj))
    obj_end = np.zeros((1, max_obj))
    for i in range(max_obj):
        oid = i + 1
        obj_lbl[0, i] = labels.get(oid, '')
        if oid in labels:
            obj_init[0, i] = 1
            obj_str[0, i] = first[oid] + 1
            obj_end[0, i] = last[oid] + 1
    A = np.empty((1, 1), dtype=[(k, 'O') for k in VBB_FIELDS])
    A[0, 0] = (np.array([[float(n_frame)]]), obj_lists, np.array([[float(max_obj)]]), obj_init,
               obj_lbl, obj_str, obj_end, np.zeros((1, max_obj)), np.array([[0.0]]),
               np.array([[0.0]]), np.array([[0.0]]))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_output(path, overwrite, '.vbb file') as tmp, open(tmp, 'wb') as fh:
        savemat(fh, {'A': A}, format='5')


def _mat_label(value, path: str, index: int) -> str:
    """Entry ``index`` of ``objLbl``: a string (empty for an unused id). A number is refused:
    ``str(7)`` would make it the label ``'7'``."""
    arr = np.asarray(value).ravel()
    if arr.size == 0:
        return ''
    if arr.dtype.kind not in 'US' or arr.size != 1:
        raise ValueError(f'{path}: the label of object id {index + 1} (objLbl entry {index}) is '
                         f'not a string but {_describe(arr)}; a vbb label is a text such as '
                         f"'person'")
    lbl = arr[0]
    return lbl.decode('latin-1') if isinstance(lbl, bytes) else str(lbl)


def box_fault(box: Sequence[float], visible: bool = False) -> Optional[str]:
    """What is wrong with an ``[l, t, w, h]`` box of a file, or None.

    A box (``pos``, a detection) needs a finite ``w > 0`` and ``h > 0``: a zero-size box can
    never be matched and an inverted one is not a box, so the evaluation would drop either
    without a word. A visible part (``posv``) may be all zero (not annotated) or of zero size
    (fully occluded), but not negative. Negative ``l``/``t`` are legitimate: boxes may start
    outside the image.
    """
    if not all(np.isfinite(box)):
        return 'NaN/inf coordinates'
    if visible:
        return 'a negative width or height' if box[2] < 0 or box[3] < 0 else None
    return 'a zero or negative width or height' if box[2] <= 0 or box[3] <= 0 else None


def _check_vbb_boxes(obj: Dict, path: str, frame: int, index: int) -> None:
    """Refuse the boxes :func:`box_fault` refuses, naming the frame and object."""
    for key in ('pos', 'posv'):
        box = obj[key]
        bad = box_fault(box, visible=key == 'posv')
        if bad:
            raise ValueError(f'{path}: frame {frame} (0-based), object {index} (id {obj["id"]}, '
                             f'{obj["lbl"]!r}): {key} [l, t, w, h] = {_box_text(box)} has {bad}')


def read_vbb(path: str) -> List[List[Dict]]:
    """Read a vbb annotation file (as written by the Caltech toolbox or :func:`write_vbb`).

    Args:
        path: the ``.vbb`` file.

    Returns:
        ``frames[f]``: list of object dicts (``id``, ``lbl``, ``pos``, ``posv``, ``occl``) of the
        0-based frame ``f``, in the file's order.

    Raises:
        ValueError: the file is not a MATLAB file holding a vbb struct ``A``; a label that is
            not a string (names the object id); an id, ``occl`` or ``nFrame`` that is not an
            integer number; a ``pos`` with NaN/inf values or a width/height <= 0, or a ``posv``
            with NaN/inf values or a negative width/height (names the frame and object).
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises several types for non-mat input
        raise ValueError(f'{path}: not a vbb file (not a MATLAB .mat file: {e})') from e
    if 'A' not in mat:
        raise ValueError(f'{path}: not a vbb file (no struct A; variables: '
                         f'{sorted(k for k in mat if not k.startswith("__"))})')
    A = mat['A']
    names = A.dtype.names
    if names is None or A.size != 1:
        raise ValueError(f'{path}: not a vbb file (A is not a 1x1 struct)')
    A = A.ravel()[0]
    if 'objLists' in names and 'objLbl' in names:
        obj_lists, obj_lbl, n_frame = A['objLists'], A['objLbl'], A['nFrame']
    elif len(names) >= 5:  # positional, as in the real files
        obj_lists, obj_lbl, n_frame = A[1], A[4], A[0]
    else:
        raise ValueError(f'{path}: not a vbb file (struct A has fields {names})')
    obj_lists = np.asarray(obj_lists).ravel()
    labels = [_mat_label(v, path, i) for i, v in enumerate(np.asarray(obj_lbl).ravel())]
    n_frame = (_mat_int(n_frame, f'{path}: nFrame') if np.asarray(n_frame).size else
               len(obj_lists))
    if n_frame != len(obj_lists):
        raise ValueError(f'{path}: nFrame={n_frame} but objLists has {len(obj_lists)} frames')
    frames: List[List[Dict]] = []
    for f, objs in enumerate(obj_lists):
        objs = np.asarray(objs)
        out: List[Dict] = []
        if objs.size and objs.dtype.names:
            missing = {'id', 'pos'} - set(objs.dtype.names)
            if missing:
                raise ValueError(f'{path}: frame {f}: objects lack fields {sorted(missing)}')
            for j, o in enumerate(objs.ravel()):
                where = f'{path}: frame {f} (0-based), object {j}'
                oid = _mat_int(o['id'], f'{where}: id', lo=1)
                if not 1 <= oid <= len(labels):
                    raise ValueError(f'{path}: frame {f}: object id {oid} has no label '
                                     f'(objLbl has {len(labels)})')
                has = objs.dtype.names
                where = f'{where} (id {oid})'
                obj = dict(
                    id=oid,
                    lbl=labels[oid - 1],
                    pos=_xywh(o['pos'], f'frame {f} (0-based), object {j}: pos', path),
                    posv=(_xywh(o['posv'], f'frame {f} (0-based), object {j}: posv', path)
                          if 'posv' in has else [0.0] * 4),
                    occl=_mat_int(o['occl'], f'{where}: occl', 0, 1) if 'occl' in has else 0)
                _check_vbb_boxes(obj, path, f, len(out))
                out.append(obj)
        frames.append(out)
    return frames


# --------------------------------------------------------------------------------------------------
# bbGt text
# --------------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


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
