"""Convert the original Caltech Pedestrian release to JPEG frames + per-frame bbGt files.

Input (the release layout)::

    SRC/set00/V000.seq ... SRC/set10/V0NN.seq
    SRC/annotations/set00/V000.vbb ...

Output (read by ``CaltechPedestrianDataset``; every preset shares one image folder)::

    OUT/images/setXX_VYYY_I%05d.jpg        the frame's JPEG bytes as stored in the .seq
    OUT/annotations/setXX_VYYY_I%05d.txt   bbGt version 3 (lbl l t w h occ vl vt vw vh ign ang)
    OUT/<preset>.txt                       image ids of the preset, one per line

Presets (Caltech code 3.2.1): ``train10x`` sets 00-05, every 3rd frame from frame 2 (42782
images); ``train1x`` sets 00-05, every 30th frame from frame 29 (4250); ``test`` sets 06-10, every
30th frame from frame 29 (4024). Frames are 0-based and sampled below the vbb's ``nFrame``.

Re-running skips frames whose image and annotation already exist (files are written to a
temporary name and renamed, so an interrupted run leaves no partial file). A truncated .seq or a
.vbb that is not a vbb struct stops the run with the file name and the fault; frames written
before stay valid.

Usage::

    python tools/dataset_converters/caltech.py data/caltech-raw data/caltech \\
        --presets train10x test
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from tqdm import tqdm

from mmmimic.datasets.caltech import FRAME_PRESETS
from mmmimic.datasets.caltech_io import SeqReader, read_vbb, write_bbgt


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def find_videos(src_root: str, sets: Sequence[int]) -> List[Dict]:
    """The (set, video, seq path, vbb path) of every ``setXX/VYYY.seq`` of ``sets`` in src_root.

    Raises:
        FileNotFoundError: a video has no vbb annotation file.
    """
    videos = []
    for s in sets:
        set_dir = osp.join(src_root, f'set{s:02d}')
        if not osp.isdir(set_dir):
            continue
        for name in sorted(os.listdir(set_dir)):
            if not (name.startswith('V') and name.endswith('.seq')):
                continue
            vbb = osp.join(src_root, 'annotations', f'set{s:02d}', name[:-4] + '.vbb')
            if not osp.isfile(vbb):
                raise FileNotFoundError(f'{osp.join(set_dir, name)} has no annotation {vbb}')
            videos.append(dict(set=s, video=int(name[1:-4]), seq=osp.join(set_dir, name), vbb=vbb))
    return videos


def convert_caltech(src_root: str,
                    out_dir: str,
                    presets: Sequence[str] = ('train10x', 'test'),
                    sets: Optional[Sequence[int]] = None,
                    progress: bool = True) -> Dict[str, Dict[int, Dict[str, int]]]:
    """Extract the frames and annotations of ``presets`` (see the module docstring).

    Args:
        src_root: the release root (``setXX/`` and ``annotations/``).
        out_dir: output root.
        presets: names of :data:`mmmimic.datasets.caltech.FRAME_PRESETS`.
        sets: restrict every preset to these set numbers (None: the preset's sets).
        progress: show a tqdm progress bar.

    Returns:
        ``{preset: {set: {'images', 'with_person', 'persons', 'written'}}}``: images listed,
        images with at least one ``person`` box, ``person`` boxes, images newly written.

    Raises:
        ValueError: a truncated/corrupt .seq or a file that is not a vbb (names the file).
        FileNotFoundError: a preset finds no video, or a video lacks its .vbb.
    """
    for p in presets:
        if p not in FRAME_PRESETS:
            raise KeyError(f'unknown preset {p!r}; known: {", ".join(FRAME_PRESETS)}')
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
        v['sampled'] = {
            p: list(range(cfg['start'], len(v['objects']), cfg['step']))
            for p, cfg in v['frames'].items()
        }
        v['all'] = sorted(set(f for fs in v['sampled'].values() for f in fs))

    counts: Dict[str, Dict[int, Dict[str, int]]] = {p: {} for p in presets}
    ids: Dict[str, List[str]] = {p: [] for p in presets}
    written = set()
    total = sum(len(v['all']) for v in plan.values())
    with tqdm(total=total, desc='caltech frames', unit='img', disable=not progress) as bar:
        for v in plan.values():
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
                    _atomic_write(img_path, reader[f])
                    write_bbgt(ann_path + '.part', v['objects'][f])
                    os.replace(ann_path + '.part', ann_path)
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
        _atomic_write(osp.join(out_dir, p + '.txt'), ''.join(i + '\n' for i in ids[p]).encode())
    return counts


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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the Caltech Pedestrian release (.seq/.vbb) to JPEG + bbGt files')
    parser.add_argument('src', help='release root holding setXX/ and annotations/')
    parser.add_argument('out', help='output root (e.g. data/caltech)')
    parser.add_argument('--presets', nargs='+', default=['train10x', 'test'],
                        choices=sorted(FRAME_PRESETS))
    parser.add_argument('--sets', nargs='+', type=int, help='only these set numbers')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        counts = convert_caltech(args.src, args.out, args.presets, args.sets,
                                 not args.no_progress)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_counts(counts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
