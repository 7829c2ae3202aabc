"""Tests of the tracking stage of the vtest labeller."""
import numpy as np

from projects.vtest_mimic.vtest_mimic.dataset import link_frames, merge_flags, track_ids


def test_merge_flags_forward_and_backward():
    a = np.array([[0, 0, 10, 30, 200], [30, 0, 10, 30, 200]])
    m = np.array([[4, 0, 32, 30, 380]])
    blobs = [a, m, m, a]
    big = [np.ones(len(b), dtype=bool) for b in blobs]
    links = link_frames(blobs, 0.3)
    flags = merge_flags(blobs, links, big)
    assert [f.tolist() for f in flags] == [[False, False], [True], [True], [False, False]]


def test_track_ids_continue_one_to_one_links_only():
    blobs = [np.array([[0, 0, 10, 30, 200]]), np.array([[2, 0, 10, 30, 200]]),
             np.array([[0, 0, 6, 30, 100], [6, 0, 6, 30, 100]]), np.array([[60, 0, 6, 30, 100]])]
    links = link_frames(blobs, 0.3)
    assert [lk.astype(int).tolist() for lk in links] == [[[1]], [[1, 1]], [[0], [0]]]
    # A split starts two new tracks; an unlinked blob starts one.
    assert [ids.tolist() for ids in track_ids(blobs, links)] == [[1], [1], [2, 3], [4]]
