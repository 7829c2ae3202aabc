# Copyright (c) mmmimic contributors. All rights reserved.
"""The Caltech ``.vbb`` format: MATLAB v5 ``.mat`` holding the video annotation struct ``A``
(toolbox ``vbb.m``), and the box check shared with the bbGt reader. Its names are re-exported by
:mod:`.caltech_io`.

:func:`read_vbb` raises ``ValueError`` naming the file, frame and object at fault. numpy and
scipy only: importable without torch or mmdet.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmmimic.fileio import atomic_output

VBB_FIELDS = ('nFrame', 'objLists', 'maxObj', 'objInit', 'objLbl', 'objStr', 'objEnd', 'objHide',
              'altered', 'log', 'logLen')
VBB_OBJ_FIELDS = ('id', 'pos', 'occl', 'lock', 'posv')


def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _box_text(box: Sequence[float]) -> str:
    return '[' + ', '.join(_fmt(v) for v in box) + ']'


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
