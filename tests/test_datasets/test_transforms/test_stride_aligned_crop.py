"""StrideAlignedRandomCrop: offsets on the teacher's cell grid, boxes moved with the crop."""
import numpy as np
import pytest
import torch

import mmmimic  # noqa: F401
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes


def results(h=100, w=150):
    img = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3) % 251
    return dict(
        img=img.astype(np.uint8), img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(torch.tensor([[10., 20., 60., 90.], [140., 0., 150., 10.]])),
        gt_bboxes_labels=np.array([0, 1]), gt_ignore_flags=np.array([False, True]))


def test_offsets_are_stride_multiples_and_cover_the_grid():
    crop = TRANSFORMS.build(dict(type='StrideAlignedRandomCrop', crop_size=(64, 96), stride=16,
                                 allow_negative_crop=True))
    np.random.seed(0)
    offsets = set()
    for _ in range(200):
        res = results()
        src = res['img'].copy()
        out = crop(res)
        x, y = out['crop_offset']
        offsets.add((x, y))
        assert out['img_shape'] == (64, 96) and out['precrop_shape'] == (100, 150)
        np.testing.assert_array_equal(out['img'], src[y:y + 64, x:x + 96])
    # x in {0, 16, 32, 48} (150 - 96 = 54), y in {0, 16, 32} (100 - 64 = 36): all 12 drawn
    assert offsets == {(x, y) for x in (0, 16, 32, 48) for y in (0, 16, 32)}


def test_boxes_are_shifted_clipped_and_dropped():
    crop = TRANSFORMS.build(dict(type='StrideAlignedRandomCrop', crop_size=(64, 96), stride=16))
    crop._random_offset = lambda h, w: (16, 32)
    out = crop(results())
    # box 1 -> (-6, -12, 44, 58) clipped to (0, 0, 44, 58); box 2 (x 124..134, y -32..-22) gone
    assert out['gt_bboxes'].tensor.tolist() == [[0., 0., 44., 58.]]
    assert out['gt_bboxes_labels'].tolist() == [0] and out['gt_ignore_flags'].tolist() == [False]
    crop._random_offset = lambda h, w: (48, 32)
    res = results()
    res['gt_bboxes'] = HorizontalBoxes(torch.tensor([[0., 0., 10., 10.]]))
    res['gt_bboxes_labels'], res['gt_ignore_flags'] = np.array([0]), np.array([False])
    assert crop(res) is None  # no box left, allow_negative_crop=False: the dataset redraws


def test_small_images_are_kept_whole_along_that_axis():
    crop = TRANSFORMS.build(dict(type='StrideAlignedRandomCrop', crop_size=(128, 128), stride=16,
                                 allow_negative_crop=True))
    out = crop(results(h=100, w=150))
    assert out['img_shape'] == (100, 128) and out['crop_offset'][1] == 0
    assert out['crop_offset'][0] in (0, 16)


@pytest.mark.parametrize('kwargs, message', [
    (dict(crop_size=(100, 96), stride=16), r'multiples of stride=16, got \(100, 96\)'),
    (dict(crop_size=(64, ), stride=16), 'crop_size must be'),
    (dict(crop_size=(64, 64), stride=0), 'stride must be a positive int'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TRANSFORMS.build(dict(type='StrideAlignedRandomCrop', **kwargs))


def test_registered_lazily_on_the_first_lookup():
    """``import mmmimic`` registers nothing; TRANSFORMS' first lookup imports the transform."""
    import subprocess
    import sys
    code = ('import sys, mmmimic; from mmdet.registry import TRANSFORMS; '
            "assert 'mmmimic.datasets.transforms' not in sys.modules; "
            "assert TRANSFORMS.get('StrideAlignedRandomCrop') is not None")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
