"""Convert the original Caltech Pedestrian release to JPEG frames + per-frame bbGt files.

The library behind ``tools/dataset_converters/caltech.py``, a thin CLI over :func:`convert_caltech`.

Input (the release layout)::

    SRC/set00/V000.seq ... SRC/set10/V0NN.seq
    SRC/annotations/set00/V000.vbb ...

Output (read by ``CaltechPedestrianDataset``; every preset shares one image folder)::

    OUT/images/setXX_VYYY_I%05d.jpg        the frame's JPEG bytes as stored in the .seq
    OUT/annotations/setXX_VYYY_I%05d.txt   bbGt version 3 (lbl l t w h occ vl vt vw vh ign ang)
    OUT/<preset>.txt                       image ids of the preset, one per line
    OUT/sources.json                       fingerprint of each converted video's .seq and .vbb

Presets (Caltech code 3.2.1): ``train10x`` sets 00-05, every 3rd frame from frame 2 (42782
images); ``train1x`` sets 00-05, every 30th frame from frame 29 (4250); ``test`` sets 06-10, every
30th frame from frame 29 (4024). Frames are 0-based and sampled below the vbb's ``nFrame``.

Re-running skips frames whose image and annotation already exist, if they were converted from
the same source video: ``sources.json`` records, per video, the size and SHA-256 of its ``.vbb``,
and the size, the SHA-256 of the first and last MiB (:data:`SEQ_HASH_BYTES`) and the SHA-256 of
every byte of its ``.seq`` (content, not mtimes, so a copied release is recognised). What a
re-run compares:

- by default, the ``.vbb`` (every byte) and the ``.seq``'s size and first and last MiB. The
  bytes of the ``.seq`` between those two MiB are *not* read: a frame replaced in the middle of
  the file by one of the same size is not noticed, and its old output is kept;
- with ``verify=True`` (``--verify``), also the SHA-256 of the whole ``.seq``, against the one
  recorded at conversion: every byte is read (about the time of one read of the release). A
  record without that hash (written by an older converter) cannot be verified, so its video is
  converted again.

A video whose source changed, or whose output has no record (a folder from an older converter),
has its old frames deleted and is converted again. Output files are not hashed: an output image
edited after the conversion is not noticed. Every file is written through
:func:`mmmimic.fileio.atomic_output` (a temporary file in the same folder, renamed when
complete), so an interrupted run leaves neither a partial file nor a ``.part``.

Every frame is checked before it is written (:func:`~mmmimic.datasets.caltech_io.check_frame`:
JPEG start/end markers, then a 1/8-scale decode), every vbb box must be finite with a positive
size (a visible part: non-negative), every label a string of one word (the bbGt format is
space-separated) and every id, ``occl`` and ``nFrame`` an integer number
(:func:`~mmmimic.datasets.caltech_io.read_vbb`). Bad input stops the run with the file, frame
and object at fault; frames written before stay valid.

Only numpy, scipy, cv2 and tqdm: importable without torch or mmdet.
"""
import hashlib
import json
import os
import os.path as osp
import warnings
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

from mmmimic.fileio import atomic_write_bytes
from .caltech_io import (FRAME_PRESETS, SeqReader, check_frame, parse_img_id, parse_video_name,
                         read_image_list, read_vbb, write_bbgt)

#: the fingerprint file written into the output folder
SOURCES_FILE = 'sources.json'
#: bytes hashed at each end of a .seq file for its quick fingerprint (the bytes between are
#: compared only with ``verify=True``, through the SHA-256 of the whole file)
SEQ_HASH_BYTES = 1 << 20
#: ``frame_check`` values of :func:`convert_caltech`
FRAME_CHECKS = ('decode', 'markers', 'none')


def _write_own_output(path: str, data: bytes) -> None:
    """Write one of the converter's own outputs (replaced on a re-run: that is the resume)."""
    atomic_write_bytes(path, data, overwrite=True, what='converter output')


def find_videos(src_root: str, sets: Sequence[int]) -> List[Dict]:
    """The (set, video, seq path, vbb path) of every ``setXX/V*.seq`` of ``sets`` in src_root.

    Raises:
        FileNotFoundError: a video has no vbb annotation file.
        ValueError: a ``.seq`` file whose name is not ``V<number>.seq`` (e.g. ``Vabc.seq``).
    """
    videos = []
    for s in sets:
        set_dir = osp.join(src_root, f'set{s:02d}')
        if not osp.isdir(set_dir):
            continue
        for name in sorted(os.listdir(set_dir)):
            if not name.endswith('.seq'):
                continue
            seq = osp.join(set_dir, name)
            number = parse_video_name(seq)
            vbb = osp.join(src_root, 'annotations', f'set{s:02d}', name[:-4] + '.vbb')
            if not osp.isfile(vbb):
                raise FileNotFoundError(f'{seq} has no annotation {vbb}')
            videos.append(dict(set=s, video=number, seq=seq, vbb=vbb))
    return videos


def _sha256(path: str, ranges: Optional[Sequence[tuple]] = None) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        if ranges is None:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        else:
            for start, size in ranges:
                f.seek(start)
                h.update(f.read(size))
    return h.hexdigest()


def source_fingerprint(seq: str, vbb: str, full: bool = False) -> Dict[str, Dict]:
    """What identifies a video's source files: sizes and content hashes (see module doc).

    Args:
        seq, vbb: the video's files.
        full: also ``seq['sha256']``, the SHA-256 of every byte of the ``.seq``.

    Returns:
        ``{'seq': {'size', 'sha256_ends'[, 'sha256']}, 'vbb': {'size', 'sha256'}}``; the
        ``.vbb`` is always hashed whole, the ``.seq`` at its first and last
        :data:`SEQ_HASH_BYTES` (``sha256_ends``).
    """
    seq_size = osp.getsize(seq)
    head = min(SEQ_HASH_BYTES, seq_size)
    tail = min(SEQ_HASH_BYTES, seq_size - head)
    fingerprint = dict(
        seq=dict(size=seq_size,
                 sha256_ends=_sha256(seq, [(0, head), (seq_size - tail, tail)])),
        vbb=dict(size=osp.getsize(vbb), sha256=_sha256(vbb)))
    if full:
        fingerprint['seq']['sha256'] = _sha256(seq)
    return fingerprint


def _quick_part(record) -> Optional[tuple]:
    """The fields of a fingerprint that a default re-run compares (None: not a fingerprint)."""
    try:
        return (record['seq']['size'], record['seq']['sha256_ends'], record['vbb']['size'],
                record['vbb']['sha256'])
    except (KeyError, TypeError):
        return None


def _source_change(record, quick: Dict, seq: str, verify: bool) -> Optional[str]:
    """Why the output recorded as ``record`` does not come from this source (None: it does).

    With ``verify``, ``quick['seq']['sha256']`` is set to the whole file's hash."""
    if record is None:
        return 'without a source record (older converter or other tool)'
    if _quick_part(record) != _quick_part(quick):
        return 'converted from a different source'
    if not verify:
        return None
    quick['seq']['sha256'] = _sha256(seq)
    recorded = record['seq'].get('sha256')
    if recorded is None:
        return ('converted without a hash of the whole .seq (older converter), so --verify '
                'cannot check them')
    if recorded != quick['seq']['sha256']:
        return ('converted from a different source (--verify: the SHA-256 of the whole .seq '
                'differs from the one recorded, although its size and first and last MiB match)')
    return None


def _load_sources(out_dir: str) -> Dict[str, Dict]:
    path = osp.join(out_dir, SOURCES_FILE)
    if not osp.isfile(path):
        return {}
    try:
        with open(path) as f:
            videos = json.load(f)['videos']
        if not isinstance(videos, dict):
            raise TypeError('"videos" is not a mapping')
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a converter fingerprint file ({e}); delete it to '
                         f'reconvert every video') from None
    return videos


def _save_sources(out_dir: str, videos: Dict[str, Dict]) -> None:
    text = json.dumps(dict(format=1, videos=videos), indent=1, sort_keys=True)
    _write_own_output(osp.join(out_dir, SOURCES_FILE), text.encode())


def _existing_outputs(img_dir: str, ann_dir: str) -> Dict[tuple, List[str]]:
    """Existing output files grouped by (set, video), from one listing of each folder."""
    by_video = defaultdict(list)
    for folder, suffix in ((img_dir, '.jpg'), (ann_dir, '.txt')):
        for name in os.listdir(folder):
            if not name.endswith(suffix):
                continue
            try:
                s, v, _ = parse_img_id(name[:-len(suffix)])
            except ValueError:
                continue
            by_video[(s, v)].append(osp.join(folder, name))
    return by_video


def check_vbb_labels(vbb: str, frames: Sequence[Sequence[Dict]]) -> None:
    """Every label must be one non-empty word: bbGt files are space-separated.

    Raises:
        ValueError: naming the vbb, the frame, the object and the label.
    """
    for f, objs in enumerate(frames):
        for j, o in enumerate(objs):
            lbl = o['lbl']
            if not isinstance(lbl, str):
                raise ValueError(f'{vbb}: frame {f} (0-based), object {j} (id {o["id"]}): label '
                                 f'{lbl!r} is not a string')
            if not lbl or any(c.isspace() for c in lbl):
                raise ValueError(f'{vbb}: frame {f} (0-based), object {j} (id {o["id"]}): label '
                                 f'{lbl!r} is not one word; bbGt annotation files separate '
                                 f'fields by spaces, so it cannot be converted (rename it in '
                                 f'the vbb, e.g. {"_".join(lbl.split()) or "person"!r})')


def _check_inputs(src_root: str, out_dir: str, presets: Sequence[str],
                  sets: Optional[Sequence[int]], frame_check: str) -> None:
    if not osp.isdir(src_root):
        raise FileNotFoundError(f'source {src_root} is not a folder (expected the release root '
                                f'holding setXX/ and annotations/)')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'output {out_dir} exists and is not a folder; give a folder '
                                 f'path (it is created if missing)')
    for sub in ('images', 'annotations'):
        p = osp.join(out_dir, sub)
        if osp.exists(p) and not osp.isdir(p):
            raise NotADirectoryError(f'output {p} exists and is not a folder')
    for p in presets:
        if p not in FRAME_PRESETS:
            raise KeyError(f'unknown preset {p!r}; known: {", ".join(FRAME_PRESETS)}')
    if frame_check not in FRAME_CHECKS:
        raise ValueError(f'frame_check={frame_check!r}; use one of {FRAME_CHECKS}')
    if sets is None:
        return
    covered = {s for p in presets for s in FRAME_PRESETS[p]['sets']}
    outside = sorted(set(sets) - covered)
    desc = '; '.join(f'{p}: sets {list(FRAME_PRESETS[p]["sets"])}' for p in presets)
    if outside:
        raise ValueError(f'sets {outside} are in none of the chosen presets ({desc})')
    for p in presets:
        if not set(sets) & set(FRAME_PRESETS[p]['sets']):
            raise ValueError(f'preset {p} has none of the sets {sorted(sets)} ({desc}); drop '
                             f'the preset or add one of its sets')


def convert_caltech(src_root: str,
                    out_dir: str,
                    presets: Sequence[str] = ('train10x', 'test'),
                    sets: Optional[Sequence[int]] = None,
                    progress: bool = True,
                    frame_check: str = 'decode',
                    verify: bool = False) -> Dict[str, Dict[int, Dict[str, int]]]:
    """Extract the frames and annotations of ``presets`` (see the module docstring).

    Args:
        src_root: the release root (``setXX/`` and ``annotations/``).
        out_dir: output root (created if missing).
        presets: names of :data:`~mmmimic.datasets.caltech_io.FRAME_PRESETS`.
        sets: restrict every preset to these set numbers (None: the preset's sets); each must
            belong to one of the presets, and each preset must keep one of them.
        progress: show a progress bar (:func:`mmmimic.utils.progress_bar.progress`).
        frame_check: ``decode`` (JPEG markers + a 1/8-scale decode of every written frame),
            ``markers`` (start/end markers only) or ``none``.
        verify: compare the SHA-256 of every byte of each ``.seq`` with the one recorded at
            its conversion (default: its size and first and last MiB only; see the module
            docstring); a video that differs is converted again.

    Returns:
        ``{preset: {set: {'images', 'with_person', 'persons', 'written'}}}``: images listed,
        images with at least one ``person`` box, ``person`` boxes, images newly written.

    Raises:
        ValueError: a truncated/corrupt .seq or frame, a file that is not a vbb, a NaN, zero-size
            or inverted vbb box, a label that is not one word of text, a non-integer id, a badly
            named video, or ``sets`` outside the presets (names the file, frame and object at
            fault).
        FileNotFoundError: the source is not a folder, a preset finds no video, or a video lacks
            its .vbb.
        NotADirectoryError: the output path (or its ``images``/``annotations``) is a file.
        KeyError: an unknown preset.
    """
    from mmmimic.utils.progress_bar import progress as progress_bar

    _check_inputs(src_root, out_dir, presets, sets, frame_check)
    img_dir, ann_dir = osp.join(out_dir, 'images'), osp.join(out_dir, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)

    # plan: per video, the union of the frames the presets sample
    plan: 'OrderedDict[str, Dict]' = OrderedDict()
    for p in presets:
        cfg = FRAME_PRESETS[p]
        use_sets = [s for s in cfg['sets'] if sets is None or s in sets]
        videos = find_videos(src_root, use_sets)
        if not videos:
            raise FileNotFoundError(f'preset {p}: no setXX/V*.seq for sets {use_sets} in '
                                    f'{src_root}')
        for v in videos:
            entry = plan.setdefault(v['seq'], dict(v, frames={}, objects=None))
            entry['frames'][p] = cfg
    for v in plan.values():
        v['objects'] = read_vbb(v['vbb'])
        check_vbb_labels(v['vbb'], v['objects'])
        v['sampled'] = {
            p: list(range(cfg['start'], len(v['objects']), cfg['step']))
            for p, cfg in v['frames'].items()
        }
        v['all'] = sorted(set(f for fs in v['sampled'].values() for f in fs))

    sources = _load_sources(out_dir)
    existing = _existing_outputs(img_dir, ann_dir)
    replaced = set()
    counts: Dict[str, Dict[int, Dict[str, int]]] = {p: {} for p in presets}
    ids: Dict[str, List[str]] = {p: [] for p in presets}
    written = set()
    total = sum(len(v['all']) for v in plan.values())
    with progress_bar(total=total, desc='caltech frames', unit='img', enabled=progress) as bar:
        for v in plan.values():
            key = f'set{v["set"]:02d}/V{v["video"]:03d}'
            fingerprint = source_fingerprint(v['seq'], v['vbb'])
            why = _source_change(sources.get(key), fingerprint, v['seq'], verify)
            if why is not None:
                stale = existing.get((v['set'], v['video']), [])
                if stale:
                    warnings.warn(f'{out_dir}: {len(stale)} output files of {key} were {why}; '
                                  f'deleting them and converting {v["seq"]} again')
                    for path in stale:
                        os.remove(path)
                    replaced.add((v['set'], v['video']))
                if 'sha256' not in fingerprint['seq']:  # recorded for a later --verify
                    fingerprint['seq']['sha256'] = _sha256(v['seq'])
                sources[key] = fingerprint
                _save_sources(out_dir, sources)
            prefix = f'set{v["set"]:02d}_V{v["video"]:03d}_I'
            reader = None
            for f in v['all']:
                img_id = f'{prefix}{f:05d}'
                img_path = osp.join(img_dir, img_id + '.jpg')
                ann_path = osp.join(ann_dir, img_id + '.txt')
                if not (osp.isfile(img_path) and osp.isfile(ann_path)):
                    if reader is None:
                        reader = SeqReader(v['seq'])  # checks the whole file before any write
                    if f >= len(reader):
                        raise ValueError(f'{v["seq"]}: has {len(reader)} frames but '
                                         f'{v["vbb"]} annotates {len(v["objects"])}')
                    data = reader[f]
                    if frame_check != 'none':
                        check_frame(data, f'{v["seq"]}: frame {f} (0-based)',
                                    decode=frame_check == 'decode')
                    _write_own_output(img_path, data)
                    write_bbgt(ann_path, v['objects'][f], overwrite=True)
                    written.add(img_id)
                bar.update(1)
            if reader is not None:
                reader.close()
            for p, frames in v['sampled'].items():
                c = counts[p].setdefault(v['set'],
                                         dict(images=0, with_person=0, persons=0, written=0))
                for f in frames:
                    img_id = f'{prefix}{f:05d}'
                    n = sum(o['lbl'] == 'person' for o in v['objects'][f])
                    c['images'] += 1
                    c['with_person'] += n > 0
                    c['persons'] += n
                    c['written'] += img_id in written
                    ids[p].append(img_id)
    for p in presets:
        _write_own_output(osp.join(out_dir, p + '.txt'),
                          ''.join(i + '\n' for i in ids[p]).encode())
    if replaced:
        _drop_stale_lists(out_dir, presets, replaced)
    return counts


def _drop_stale_lists(out_dir: str, presets: Sequence[str], replaced: set) -> None:
    """Remove the image lists of presets not converted in this run that list frames of a video
    whose old output was deleted (they would name missing or different frames)."""
    for p in FRAME_PRESETS:
        path = osp.join(out_dir, p + '.txt')
        if p in presets or not osp.isfile(path):
            continue
        listed = {parse_img_id(i)[:2] for i in read_image_list(path)}
        if listed & replaced:
            os.remove(path)
            warnings.warn(f'{path} listed frames of re-converted videos and was removed; '
                          f'convert preset {p} again to restore it')


def format_counts(counts: Dict[str, Dict[int, Dict[str, int]]]) -> str:
    """A per-preset, per-set table of the counts returned by :func:`convert_caltech`."""
    lines = [f'{"preset":<10}{"set":>6}{"images":>9}{"w/ person":>11}{"persons":>9}'
             f'{"written":>9}']
    for p, per_set in counts.items():
        tot = dict(images=0, with_person=0, persons=0, written=0)
        for s, c in sorted(per_set.items()):
            lines.append(f'{p:<10}{f"set{s:02d}":>6}{c["images"]:>9}{c["with_person"]:>11}'
                         f'{c["persons"]:>9}{c["written"]:>9}')
            for k in tot:
                tot[k] += c[k]
        lines.append(f'{p:<10}{"all":>6}{tot["images"]:>9}{tot["with_person"]:>11}'
                     f'{tot["persons"]:>9}{tot["written"]:>9}')
    return '\n'.join(lines)
