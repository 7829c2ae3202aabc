"""A random crop whose offset is a multiple of the teacher's stride (teacher-feature cache).

The teacher-feature cache (:class:`~mmmimic.teacher_cache.TeacherFeatureCache`)
stores the teacher's map of each whole (resized, flipped) image and serves a crop by slicing that
map. Cell ``j`` of a stride-``s`` map covers pixels ``[j*s, (j+1)*s)``, so the slice lines up with
the crop only when the crop starts on a cell boundary: a crop offset of ``s*k`` pixels is exactly
``k`` cells. mmdet's ``RandomCrop`` draws any pixel offset and is refused with a cache.
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class StrideAlignedRandomCrop(BaseTransform):
    """Crop ``crop_size`` at a random offset that is a multiple of ``stride`` in x and y.

    Required keys: ``img``; optional ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``.
    Modified keys: ``img``, ``img_shape`` and the gt keys (boxes shifted, clipped to the crop;
    boxes left with no area are dropped). Added keys: ``crop_offset`` ``(x, y)`` pixels and
    ``precrop_shape`` ``(h, w)``: the image shape before the crop. The teacher-feature cache needs
    both in the data samples: ``PackDetInputs(meta_keys=(..., 'crop_offset', 'precrop_shape'))``.

    Args:
        crop_size: ``(h, w)`` of the crop, each a positive multiple of ``stride``. An image
            smaller than the crop along an axis is kept whole along that axis (offset 0).
        stride: the teacher map's stride in input pixels (16 for the Inception teacher).
        allow_negative_crop: keep a crop without any gt box; ``False`` returns ``None`` so the
            dataset draws another sample (as mmdet's ``RandomCrop``).
    """

    def __init__(self, crop_size: Tuple[int, int], stride: int = 16,
                 allow_negative_crop: bool = False) -> None:
        if (not isinstance(stride, int) or isinstance(stride, bool)) or stride <= 0:
            raise ValueError(f'StrideAlignedRandomCrop: stride must be a positive int, got '
                             f'{stride!r}')
        if (not isinstance(crop_size, (tuple, list)) or len(crop_size) != 2
                or any(not isinstance(v, int) or v <= 0 or v % stride for v in crop_size)):
            raise ValueError(f'StrideAlignedRandomCrop: crop_size must be (h, w), positive '
                             f'multiples of stride={stride}, got {crop_size!r}')
        self.crop_size = tuple(crop_size)
        self.stride = stride
        self.allow_negative_crop = allow_negative_crop

    @cache_randomness
    def _random_offset(self, height: int, width: int) -> Tuple[int, int]:
        """``(x, y)``: uniform over the stride multiples that keep the crop inside the image."""
        crop_h, crop_w = min(self.crop_size[0], height), min(self.crop_size[1], width)
        x = self.stride * np.random.randint(0, (width - crop_w) // self.stride + 1)
        y = self.stride * np.random.randint(0, (height - crop_h) // self.stride + 1)
        return int(x), int(y)

    def transform(self, results: dict) -> Optional[dict]:
        img = results['img']
        height, width = img.shape[:2]
        x, y = self._random_offset(height, width)
        crop_h, crop_w = min(self.crop_size[0], height), min(self.crop_size[1], width)
        results['img'] = img[y:y + crop_h, x:x + crop_w]
        results['img_shape'] = results['img'].shape[:2]
        results['crop_offset'] = (x, y)
        results['precrop_shape'] = (height, width)
        if results.get('gt_bboxes') is not None:
            boxes = results['gt_bboxes']
            boxes.translate_([-x, -y])
            boxes.clip_((crop_h, crop_w))
            valid = ((boxes.widths > 0) & (boxes.heights > 0)).numpy()
            if not valid.any() and not self.allow_negative_crop:
                return None
            results['gt_bboxes'] = boxes[valid]
            for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
                if results.get(key) is not None:
                    results[key] = results[key][valid]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, stride={self.stride}, '
                f'allow_negative_crop={self.allow_negative_crop})')
