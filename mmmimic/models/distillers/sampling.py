"""The data handling of a mimic step that needs no network: class-agnostic copies of the data
samples for an RPN, mmdet's RPN loss names, assigning and sampling proposals, image RoIs."""
from typing import Dict, List, Optional, Tuple

import copy

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi


def class_agnostic(batch_data_samples: SampleList) -> SampleList:
    """Copies of the data samples with all gt labels 0, as mmdet gives its RPNs."""
    rpn_samples = copy.deepcopy(batch_data_samples)
    for data_sample in rpn_samples:
        data_sample.gt_instances.labels = torch.zeros_like(data_sample.gt_instances.labels)
    return rpn_samples


def rpn_loss_keys(losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """mmdet's ``TwoStageDetector`` renaming: a loss key without ``rpn`` gets the prefix
    ``rpn_`` (an FCOS RPN's ``loss_cls`` would clash with the RoI head's). ``RPNHead``'s
    keys (``loss_rpn_cls``, ``loss_rpn_bbox``) are left as they are."""
    for key in list(losses):
        if 'loss' in key and 'rpn' not in key:
            losses[f'rpn_{key}'] = losses.pop(key)
    return losses


def assign_and_sample(assigner, sampler, rpn_results_list: List[InstanceData],
                      batch_data_samples: SampleList,
                      feats: Optional[Tuple[Tensor]] = None) -> List[SamplingResult]:
    """Assign each image's (detached) proposals to its gt (ignored boxes honoured) and
    sample them; ``feats`` are handed to the sampler per image when given (e.g. OHEM)."""
    batch_gt_instances, batch_gt_ignore, _ = unpack_gt_instances(batch_data_samples)
    sampling_results = []
    for i, proposals in enumerate(rpn_results_list):
        priors = InstanceData(priors=proposals.bboxes.detach())
        assign_result = assigner.assign(priors, batch_gt_instances[i], batch_gt_ignore[i])
        kwargs = {} if feats is None else dict(feats=[lvl_feat[i][None] for lvl_feat in feats])
        sampling_results.append(
            sampler.sample(assign_result, priors, batch_gt_instances[i], **kwargs))
    return sampling_results


def image_rois(batch_data_samples: SampleList, batch_inputs: Tensor) -> Tensor:
    """One RoI per image: its valid (unpadded) region in input pixels."""
    boxes = [
        batch_inputs.new_tensor([[0, 0, s.img_shape[1], s.img_shape[0]]])
        for s in batch_data_samples
    ]
    return bbox2roi(boxes)


def check_map_shapes(student_map: Tensor, teacher_map: Tensor) -> None:
    """The connected student map and the teacher map must have one shape."""
    if student_map.shape != teacher_map.shape:
        raise ValueError(f'the student map after the connector {tuple(student_map.shape)} '
                         f'and the teacher map {tuple(teacher_map.shape)} differ in shape')
