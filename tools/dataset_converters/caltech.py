"""Convert the original Caltech Pedestrian release to JPEG frames + per-frame bbGt files.

A thin CLI over :func:`mmmimic.datasets.caltech_converter.convert_caltech` (layout, presets,
re-run and checking rules: see that module).

Usage::

    python tools/dataset_converters/caltech.py data/caltech-raw data/caltech \\
        --presets train10x test
"""
import argparse
import sys


from mmmimic.datasets.caltech_converter import (FRAME_CHECKS, convert_caltech,
                                                format_counts)
from mmmimic.datasets.caltech_io import FRAME_PRESETS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the Caltech Pedestrian release (.seq/.vbb) to JPEG + bbGt files')
    parser.add_argument('src', help='release root holding setXX/ and annotations/')
    parser.add_argument('out', help='output root (e.g. data/caltech)')
    parser.add_argument('--presets', nargs='+', default=['train10x', 'test'],
                        choices=sorted(FRAME_PRESETS))
    parser.add_argument('--sets', nargs='+', type=int,
                        help='only these set numbers (each in one of the presets)')
    parser.add_argument('--frame-check', default='decode', choices=FRAME_CHECKS,
                        help='check of every written frame: JPEG markers + a 1/8-scale decode '
                        '(default; its cost per frame: docs/user_guides/caltech.md), markers '
                        'only, or none')
    parser.add_argument('--verify', action='store_true',
                        help='re-run: compare the SHA-256 of every byte of each .seq with the one '
                        'recorded at its conversion (default: its size and first and last MiB '
                        'only) and convert a video that differs again')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        counts = convert_caltech(args.src, args.out, args.presets, args.sets,
                                 not args.no_progress, args.frame_check, args.verify)
    except (ValueError, OSError, KeyError) as e:
        print(f'error: {e.args[0] if isinstance(e, KeyError) else e}', file=sys.stderr)
        return 1
    print(format_counts(counts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
