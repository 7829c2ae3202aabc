"""Tests of the tracking stage of the vtest labeller."""
import numpy as np

from mmmimic.datasets.vtest import link_frames, merge_flags


def test_merge_flags_forward_and_backward():
    a = np.array([[0, 0, 10, 30, 200], [30, 0, 10, 30, 200]])
    m = np.array([[4, 0, 32, 30, 380]])
    blobs = [a, m, m, a]
    big = [np.ones(len(b), dtype=bool) for b in blobs]
    links = link_frames(blobs, 0.3)
    flags = merge_flags(blobs, links, big)
    assert [f.tolist() for f in flags] == [[False, False], [True], [True], [False, False]]
