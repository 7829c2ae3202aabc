"""Tests of the per-frame blob rules of the vtest labeller."""
import numpy as np

from mmmimic.datasets.vtest import HeightModel, LabelerConfig, merge_fragments


def test_merge_fragments_rejoins_cut_body():
    hm = HeightModel(slope=0.0, intercept=60.0, person_fill=0.2)
    # Head + torso above a sign, legs below it: one person of height 60.
    blobs = np.array([[100, 40, 20, 22, 300], [102, 80, 16, 20, 250]])
    merged = merge_fragments(blobs, hm, LabelerConfig())
    assert merged.tolist() == [[100, 40, 20, 60, 550]]
    # Two people side by side are not merged.
    two = np.array([[100, 40, 20, 60, 700], [124, 40, 20, 60, 700]])
    assert len(merge_fragments(two, hm, LabelerConfig())) == 2
