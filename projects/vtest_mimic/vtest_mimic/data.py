"""Data preparation of the vtest study: the Caltech-format release of ``vtest.avi`` (labelled by
:mod:`.dataset`), converted with the converter a Caltech user runs."""
import os.path as osp
import shutil

from mmmimic.datasets.caltech_converter import convert_caltech
from .common import StageError, log
from .dataset import (LabelerConfig, build_release, default_cache_dir, locate_video,
                      resolve_hog)
from .models import SPLIT_LISTS


def prepare_data(args) -> str:
    """Build the vtest Caltech-format release (cached; rebuilt when the labeller changed) and
    convert it into ``args.data_dir`` (re-converted when the release changed).

    ``args``: the run's options (``out``, ``data_dir``, ``video``, ``gap``, ``force_data``).
    The release is what ``tools/build_vtest.py --out <out>/vtest_release`` writes with its
    defaults (labels cached in ``$MMMIMIC_CACHE`` or ``~/.cache/mmmimic``).

    Returns:
        the release folder.

    Raises:
        StageError: the video is not found, the labeller or the converter fails.
    """
    release = osp.join(args.out, 'vtest_release')
    cache_dir = default_cache_dir()
    try:
        video = locate_video(args.video, cache_dir, allow_download=True)
        log(f'video: {video}')
        build_release(video, release, cfg=LabelerConfig(use_hog=resolve_hog('auto')),
                      cache_dir=cache_dir, force=args.force_data,
                      **({} if args.gap is None else dict(gap=args.gap)))
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        raise StageError(f'building the vtest release from {args.video or "vtest.avi"} failed: '
                         f'{err}') from err
    if args.force_data and osp.isdir(args.data_dir):
        shutil.rmtree(args.data_dir)
    convert_caltech(release, args.data_dir, presets=('vtest_train', 'vtest_val', 'vtest_test'),
                    progress=True)
    for split in ('vtest_train.txt', *SPLIT_LISTS.values()):
        path = osp.join(args.data_dir, split)
        if not osp.isfile(path) or not open(path).read().strip():
            raise StageError(f'{path} is missing or empty after converting {release}')
    return release
