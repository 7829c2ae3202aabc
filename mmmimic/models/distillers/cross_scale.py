"""Cross-scale mimic (paper Sec. 3.5): resize a batch for the student.

The distiller feeds the student the batch resized by ``scale`` (0.5: the half-size image) while
the teacher sees the full-size batch. :func:`resize_batch` resizes the padded images and every
geometric field of the data samples consistently, so that a box ``b`` in the student's input is
``b / scale`` in the teacher's, exactly, and ``scale_factor`` (original -> student input) makes
mmdet's ``rescale=True`` map the student's predictions to the original image.
"""
import copy
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.structures import SampleList
from mmdet.structures.bbox import BaseBoxes

_SHAPE_KEYS = ('img_shape', 'pad_shape', 'batch_input_shape')


def _scale_shape(shape: Sequence, scale: float) -> tuple:
    scaled = [d * scale for d in shape[:2]]
    return tuple(int(d) if float(d).is_integer() else d for d in scaled) + tuple(shape[2:])


def _scale_boxes(boxes, scale: float):
    if isinstance(boxes, BaseBoxes):
        boxes = boxes.clone()
        boxes.rescale_([scale, scale])
        return boxes
    return boxes * scale


def resize_batch(batch_inputs: Tensor, batch_data_samples: SampleList, scale: float,
                 scale_boxes: bool = True) -> Tuple[Tensor, SampleList]:
    """The batch as the student sees it in cross-scale mimic.

    Images are resized bilinearly (``align_corners=False``; for ``scale=0.5`` every output pixel
    is the mean of a 2x2 block). ``img_shape``, ``pad_shape``, ``batch_input_shape`` and the gt
    and ignored boxes are multiplied by ``scale``; ``scale_factor`` too, so it maps the original
    image to the student's input.

    Args:
        batch_inputs: ``(B, 3, H, W)`` normalised, padded images; ``H * scale`` and
            ``W * scale`` must be integers (exact coordinate mapping).
        batch_data_samples: data samples (not modified; copies are returned).
        scale: resize factor.
        scale_boxes: also scale the gt and ignored boxes (training: the network learns them at
            its input's scale). ``False`` keeps them in the pipeline's coordinates, which is what
            mmdet's metrics expect at test time: they compare the data sample's gt boxes with
            the predictions that ``scale_factor`` maps back to the original image.

    Returns:
        ``(resized_inputs, resized_samples)``.

    Raises:
        ValueError: the padded batch cannot be resized exactly (names the shape and the
            ``pad_size_divisor`` that would fix it).
    """
    h, w = batch_inputs.shape[-2:]
    new_h, new_w = h * scale, w * scale
    if not (float(new_h).is_integer() and float(new_w).is_integer()):
        raise ValueError(f'cross-scale mimic resizes the padded batch ({h}x{w}) by {scale}, '
                         'which is not an integer size; set the data_preprocessor\'s '
                         f'pad_size_divisor to a multiple of {1 / scale:g} x the student stride')
    inputs = F.interpolate(batch_inputs, size=(int(new_h), int(new_w)), mode='bilinear',
                           align_corners=False)
    samples = []
    for data_sample in batch_data_samples:
        data_sample = copy.deepcopy(data_sample)
        meta = {key: _scale_shape(data_sample.metainfo[key], scale)
                for key in _SHAPE_KEYS if key in data_sample.metainfo}
        meta['batch_input_shape'] = (int(new_h), int(new_w))
        scale_factor = data_sample.metainfo.get('scale_factor', (1.0, 1.0))
        meta['scale_factor'] = tuple(f * scale for f in scale_factor)
        data_sample.set_metainfo(meta)
        for field in ('gt_instances', 'ignored_instances') if scale_boxes else ():
            if field in data_sample and 'bboxes' in data_sample.get(field):
                instances = data_sample.get(field)
                instances.bboxes = _scale_boxes(instances.bboxes, scale)
        samples.append(data_sample)
    return inputs, samples


def student_batch(batch_inputs: Tensor, batch_data_samples: SampleList,
                  scale: float) -> Tuple[Tensor, SampleList]:
    """The batch the student sees: the teacher's batch resized by ``scale``.

    Identity at scale 1; otherwise :func:`resize_batch` (images, gt boxes, ``img_shape``,
    ``pad_shape``, ``batch_input_shape``, ``scale_factor``).

    Args:
        batch_inputs: ``(B, 3, H, W)`` the teacher's (full-size) images.
        batch_data_samples: their data samples (not modified).
        scale: the student's input scale.

    Returns:
        ``(inputs, data_samples)`` for the student.
    """
    if scale == 1.0:
        return batch_inputs, batch_data_samples
    return resize_batch(batch_inputs, batch_data_samples, scale)


def to_teacher_coords(rois: Tensor, scale: float) -> Tensor:
    """RoIs ``(N, 5)`` in the student's input pixels -> the teacher's (``/ scale``).

    For scale 0.5 this is exact in floating point, so a RoI crops the same cells of the
    student map (stride ``s / 2`` on the half image after the x2 deconv) and of the teacher
    map (stride ``s`` on the full image). Returns ``rois`` itself at scale 1.
    """
    if scale == 1.0:
        return rois
    return torch.cat([rois[:, :1], rois[:, 1:] / scale], dim=1)
