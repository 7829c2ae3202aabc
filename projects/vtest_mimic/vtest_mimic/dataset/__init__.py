# Copyright (c) mmmimic contributors. All rights reserved.
"""The vtest study's data: classical, model-independent pedestrian labels for OpenCV's sample video
``vtest.avi`` and the Caltech-format release built from them (the project's built-in data).

Modules by job: :mod:`.structures` (labels, parameters, perspective model, per-frame labels),
:mod:`.foreground` (background subtraction, shadows, morphology, blobs), :mod:`.perspective`
(expected height per foot row), :mod:`.blob_rules` (fragment merging, size rules),
:mod:`.tracking`, :mod:`.hog` (HOG agreement before a split), :mod:`.labeler` (the stages in
order), :mod:`.video` (decoding), :mod:`.source` (finding ``vtest.avi``), :mod:`.label_cache`,
:mod:`.release` (the ``.seq``/``.vbb`` release) and :mod:`.visualize`.
``projects/vtest_mimic/tools/build_vtest.py`` is the command line.
"""
from .blob_rules import classify_blob, merge_fragments
from .foreground import ForegroundExtractor, connected_blobs, median_background
from .hog import HogSplitter, hog_available, resolve_hog
from .label_cache import (BUILD_VERSION, label_video, labeller_digest, labels_from_json,
                          labels_to_json)
from .labeler import VideoPedestrianLabeler
from .perspective import fit_height_model
from .release import (SPLIT_SETS, build_release, label_stats, make_splits, parse_size,
                      print_stats, to_vbb_frames)
from .source import default_cache_dir, fetch_from_apt, file_digest, locate_video
from .structures import (AREA, FAR, GROUP, PERSON, UNCERTAIN, FrameLabels, H, HeightModel,
                         LabelerConfig, W, X, Y)
from .tracking import link_frames, merge_flags, track_ids
from .video import decode_video, iter_video_frames
from .visualize import render_samples

__all__ = [
    'PERSON', 'UNCERTAIN', 'GROUP', 'FAR', 'X', 'Y', 'W', 'H', 'AREA', 'LabelerConfig',
    'HeightModel', 'FrameLabels', 'median_background', 'ForegroundExtractor',
    'connected_blobs', 'fit_height_model', 'merge_fragments', 'classify_blob', 'link_frames',
    'merge_flags', 'track_ids', 'HogSplitter', 'hog_available', 'resolve_hog',
    'VideoPedestrianLabeler', 'iter_video_frames', 'decode_video',
    'default_cache_dir', 'fetch_from_apt', 'locate_video', 'file_digest',
    'BUILD_VERSION', 'labels_to_json', 'labels_from_json', 'labeller_digest', 'label_video',
    'SPLIT_SETS', 'make_splits', 'to_vbb_frames', 'label_stats', 'parse_size',
    'build_release', 'print_stats', 'render_samples'
]
