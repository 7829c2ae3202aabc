# Copyright (c) mmmimic contributors. All rights reserved.
"""Build a Caltech-format pedestrian mini-release from OpenCV's sample video ``vtest.avi``.

The video (795 frames, 768x576, 10 fps, a fixed camera over a campus) ships in Debian's
``opencv-doc`` package.  It is labelled with the classical procedure of
:mod:`projects.vtest_mimic.vtest_mimic.dataset` (no learned model) and written as::

    <out>/set00/V000.seq              train  (video frames 0-416 by default)
    <out>/set01/V000.seq              val    (447-526: carved from the training part)
    <out>/set02/V000.seq              test   (557-794: the last 30% of the video)
    <out>/annotations/setXX/V000.vbb  the matching annotations
    <out>/splits.json                 frame ranges, gaps, scale, label statistics

Splits are separated by gaps of 30 frames (3 s) so near-identical frames do not leak.
Frames are resized to Caltech's 640x480 by default (exactly 5/6 of 768x576), so the
unmodified Caltech border rule (5 px inside 640x480) applies; ``--size native`` keeps
768x576.  See ``projects/vtest_mimic/docs/labels.md`` for the procedure and the measured label
quality.

Example::

    python -m projects.vtest_mimic.tools.build_vtest --out data/vtest_caltech \\
        --show-dir /tmp/vtest_show

This script is the command line only: the labeller and the release writer live in
:mod:`projects.vtest_mimic.vtest_mimic.dataset` (``build_release``, ``render_samples``, ...).
"""
import argparse
import sys
from typing import Optional, Sequence

from projects.vtest_mimic.vtest_mimic.dataset import (LabelerConfig, build_release,
                                                      default_cache_dir, locate_video,
                                                      render_samples, resolve_hog)


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
    """Locate the video, label it, write the release (and render samples); returns the
    content of ``splits.json``."""
    args = parse_args(argv)
    cache_dir = args.cache_dir or default_cache_dir()
    video = locate_video(args.video, cache_dir, allow_download=not args.no_download)
    print(f'video: {video}')
    cfg = LabelerConfig(use_hog=resolve_hog(args.hog), far_height=args.far_height)
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
