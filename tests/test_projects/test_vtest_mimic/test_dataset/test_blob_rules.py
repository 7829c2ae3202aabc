"""Tests of the per-frame blob rules of the vtest labeller."""
import numpy as np

from projects.vtest_mimic.vtest_mimic.dataset import (FAR, GROUP, PERSON, UNCERTAIN, HeightModel,
                                                      LabelerConfig, classify_blob, merge_fragments)


def test_merge_fragments_rejoins_cut_body():
    hm = HeightModel(slope=0.0, intercept=60.0, person_fill=0.2)
    # Head + torso above a sign, legs below it: one person of height 60.
    blobs = np.array([[100, 40, 20, 22, 300], [102, 80, 16, 20, 250]])
    merged = merge_fragments(blobs, hm, LabelerConfig())
    assert merged.tolist() == [[100, 40, 20, 60, 550]]
    # Two people side by side are not merged.
    two = np.array([[100, 40, 20, 60, 700], [124, 40, 20, 60, 700]])
    assert len(merge_fragments(two, hm, LabelerConfig())) == 2


def test_classify_blob_size_rules():
    hm = HeightModel(slope=0.0, intercept=60.0, person_fill=0.2)  # person area 720 px
    cfg = LabelerConfig()

    def cls(blob, far_row=-np.inf, model=hm):
        return classify_blob(np.array(blob), model, (200, 200), far_row, cfg)

    assert cls([50, 40, 24, 60, 700]) == PERSON
    assert cls([50, 40, 40, 60, 1500]) == GROUP  # too wide, area of two people
    assert cls([50, 40, 40, 60, 500]) == UNCERTAIN  # too wide, too light for two
    assert cls([50, 40, 24, 40, 400]) == UNCERTAIN  # too short
    assert cls([50, 40, 10, 10, 50]) is None  # noise
    assert cls([0, 40, 20, 60, 100]) == UNCERTAIN  # on the border
    assert cls([0, 40, 20, 60, 20]) is None  # a border sliver below 1/4 of the minimum
    assert cls([50, 40, 24, 60, 700], far_row=150) == FAR
    assert cls([50, 40, 24, 60, 700], model=HeightModel(0.0, 30.0)) == FAR
