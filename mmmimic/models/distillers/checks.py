"""Build-time checks of a :class:`~.FeatureMimicDistiller`: its settings, its ``mimic_cfg``, the
student's RPN head, the losses against their slots, the preprocessing of teacher and student,
the mimicked maps' channels and strides (measured on the networks) and what the teacher cache
can serve. Each refusal names what is wrong and what is supported."""
import copy
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import (CascadeRPNHead, EmbeddingRPNHead, RPNHead,
                                      StageCascadeRPNHead)
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.detectors.rpn import RPN
from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from ..data_preprocessors.preprocessor_cfg import input_scale_of, plain_preprocessor
from ..losses import BaseMimicLoss
from .pyramid import backbone_coarsest_stride, measure_feature_maps


# Stage-1 sampling of the paper: 128 RoIs per image, positives:negatives = 1:1, positives and
# negatives by IoU with the ground truth as in Fast R-CNN; RoIs only from the student's proposals.
# ``proposal=None``: the proposals the student's RPN gives in its own step (a two-stage student's
# ``train_cfg.rpn_proposal``, else the RPN's ``test_cfg``, i.e. its predict step).
# ``proposal_candidates``: the predict step runs on the best 500 anchors per level first, then on
# the best 1000 for the images that pass cannot prove, and keeps a result only where it provably
# equals the full step's (proposals.py); ``None``: off. Chosen by benchmarks/mimic_proposals.py
# (docs/advanced_guides/distiller.md, "Speed"): 500 proves itself on nearly every image of a small
# map, 1000 on
# more of a large one.
DEFAULT_MIMIC_CFG = dict(
    proposal=None,
    proposal_candidates=(500, 1000),
    assigner=dict(
        type='MaxIoUAssigner',
        pos_iou_thr=0.5,
        neg_iou_thr=0.5,
        min_pos_iou=0.5,
        match_low_quality=False,
        ignore_iof_thr=-1),
    sampler=dict(
        type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1,
        add_gt_as_proposals=False))


def merge_mimic_cfg(mimic_cfg: OptConfigType) -> ConfigDict:
    """:data:`DEFAULT_MIMIC_CFG` with ``mimic_cfg`` merged in recursively, as config inheritance
    merges: ``dict(assigner=dict(ignore_iof_thr=0.5))`` changes that one assigner field;
    ``_delete_=True`` in a sub-dict replaces its default as a whole.

    Args:
        mimic_cfg: the distiller's ``mimic_cfg`` (keys ``proposal``, ``proposal_candidates``,
            ``assigner``, ``sampler``),
            or ``None`` for the defaults.

    Returns:
        the effective settings (a new ``ConfigDict``; the inputs are not modified).

    Raises:
        KeyError: an unknown top-level key (names it and the valid keys).
    """
    mimic_cfg = dict(mimic_cfg or {})
    unknown = sorted(set(mimic_cfg) - set(DEFAULT_MIMIC_CFG) - {'_delete_'})
    if unknown:
        raise KeyError(f'unknown mimic_cfg key(s) {unknown}; the valid keys are '
                       f'{sorted(DEFAULT_MIMIC_CFG)}')
    merged = ConfigDict(copy.deepcopy(DEFAULT_MIMIC_CFG))
    merged.merge(mimic_cfg)
    return merged


# What every refusal of a student's RPN head says is supported (check_rpn_head).
SUPPORTED_RPN_HEADS = (
    'supported: RPNHead and its subclasses (e.g. FastExactRPNHead), CascadeRPNHead, and mmdet '
    'dense heads used as the RPN (FCOSHead, GARPNHead, RetinaHead, ...: any BaseDenseHead that '
    'keeps its loss_and_predict); e.g. mmdet\'s faster-rcnn_r50_fpn_1x_coco.py (RPNHead) with '
    'your backbone and neck')

# data_preprocessor keys that change what the networks see; teacher and student must agree.
NORMALISATION_KEYS = ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr')


@torch.no_grad()
def measure_feature_map(detector: nn.Module, index: int = -1,
                        name: str = 'network') -> Tuple[int, float, int]:
    """Run ``detector.extract_feat`` once on a blank 256x256 input (eval mode) and measure map
    ``index``.

    Returns:
        ``(channels, stride, number of maps extract_feat returns)``.

    Raises:
        ValueError: ``index`` is out of range (names ``{name}_feature``, the detector and the
            number of maps).
    """
    maps = measure_feature_maps(detector)
    if not -len(maps) <= index < len(maps):
        raise ValueError(
            f'{name}_feature={index} is out of range: the {name} ({type(detector).__name__}) '
            f'extract_feat returns {len(maps)} feature map(s) (valid: {-len(maps)}..'
            f'{len(maps) - 1})')
    channels, stride = maps[index]
    return channels, stride, len(maps)


def check_settings(student_feature: int, teacher_feature: int, mimic_cfg: OptConfigType,
                   student_input_scale: float) -> None:
    """Refuse non-integer feature indices, unknown ``mimic_cfg`` keys and an input scale
    outside ``(0, 1]``, naming them."""
    for key, index in (('student_feature', student_feature),
                       ('teacher_feature', teacher_feature)):
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f'{key} must be an int, got {index!r} (an index into the maps '
                            'that extract_feat returns)')
    merge_mimic_cfg(mimic_cfg)  # unknown keys fail here, before any network is built
    if not 0 < float(student_input_scale) <= 1:
        raise ValueError(f'student_input_scale must be in (0, 1], got {student_input_scale}')


def check_pyramid_settings(student_feature: int, teacher_feature: int) -> None:
    """``mimic_levels`` replaces ``student_feature`` / ``teacher_feature``."""
    if (student_feature, teacher_feature) != (-1, -1):
        raise ValueError(f'mimic_levels gives the level pairs; student_feature='
                         f'{student_feature} / teacher_feature={teacher_feature} select the '
                         'single pair of the default mode: give one or the other')


def build_mimic_loss(slot: str, cfg: OptConfigType,
                     accepted: Tuple[str, ...]) -> Optional[BaseMimicLoss]:
    """Build the loss of argument ``slot``: a :class:`BaseMimicLoss` whose ``mimic_input``
    that slot feeds; build errors (e.g. a negative ``loss_weight``) name the slot."""
    if cfg is None:
        return None
    try:
        loss = MODELS.build(cfg)
    except (TypeError, ValueError) as err:
        raise type(err)(f'{slot}: {err}') from err
    if not isinstance(loss, BaseMimicLoss):
        raise TypeError(f'{slot}: {type(loss).__name__} is not a mimic loss; a mimic loss '
                        'subclasses mmmimic.models.losses.BaseMimicLoss (declared '
                        'mimic_input, loss_weight, forward signature of that input)')
    loss.check_mimic_input(slot, accepted)
    return loss


def check_roi_mimic_networks(student: nn.Module, teacher: nn.Module) -> None:
    """Two-stage mimic needs a RoI head on both networks."""
    for name, net in (('student', student), ('teacher', teacher)):
        if not getattr(net, 'with_roi_head', False):
            raise TypeError(f'two-stage mimic (roi_mimic_cls_loss / roi_mimic_bbox_loss) '
                            f'needs a two-stage {name} with a roi_head, got '
                            f'{type(net).__name__}')


def distiller_preprocessor(data_preprocessor: OptConfigType, student: ConfigDict,
                           student_input_scale: float) -> OptConfigType:
    """The distiller's own preprocessor: the one given, else the student's. The teacher sees
    the batch it produces, so a :class:`ScaledInputDataPreprocessor` (a student that runs at
    a fraction of the data's size) is replaced by its plain ``DetDataPreprocessor`` part,
    and its ``input_scale`` must be the distiller's ``student_input_scale``."""
    if data_preprocessor is not None:
        if input_scale_of(data_preprocessor) is not None:
            raise ValueError('the distiller\'s data_preprocessor is a '
                             'ScaledInputDataPreprocessor, so the teacher would see the '
                             'resized batch; give the plain DetDataPreprocessor and set '
                             'student_input_scale instead')
        return data_preprocessor
    data_preprocessor = student.get('data_preprocessor')
    scale = input_scale_of(data_preprocessor)
    if scale is None:
        return data_preprocessor
    if scale != float(student_input_scale):
        raise ValueError(f'the student\'s ScaledInputDataPreprocessor has input_scale={scale} '
                         f'but the distiller\'s student_input_scale is {student_input_scale}: '
                         'the distiller resizes the student\'s batch itself; set '
                         f'student_input_scale={scale}')
    return plain_preprocessor(data_preprocessor)


def check_normalisation(student_dp: OptConfigType, teacher_dp: OptConfigType) -> None:
    """Teacher and student must normalise images identically (:data:`NORMALISATION_KEYS`)."""
    if not student_dp or not teacher_dp:
        return
    for key in NORMALISATION_KEYS:
        s_val, t_val = student_dp.get(key), teacher_dp.get(key)
        if s_val is not None and t_val is not None and list(
                s_val if isinstance(s_val, (list, tuple)) else [s_val]) != list(
                    t_val if isinstance(t_val, (list, tuple)) else [t_val]):
            raise ValueError(f'teacher and student normalise images differently: '
                             f'{key}={t_val} (teacher) vs {s_val} (student)')


def rpn_of(detector: nn.Module) -> Optional[nn.Module]:
    """A detector's RPN head (``rpn_head``, or ``bbox_head`` of an ``RPN`` detector)."""
    rpn = getattr(detector, 'rpn_head', None)
    if rpn is None and isinstance(detector, RPN):
        rpn = detector.bbox_head
    return rpn


def check_student_rpn(student: nn.Module) -> str:
    """Refuse, at build time, a student the mimic step cannot take proposals from.

    Args:
        student: the built student detector.

    Returns:
        how its RPN head is run (:func:`check_rpn_head`), or ``'one_stage'`` for a one-stage
        detector (:func:`check_one_stage_student`).

    Raises:
        TypeError: the student has neither an RPN head nor a one-stage head, or one that is not
            supported (one line naming the head type, why, and what is supported).
    """
    rpn = rpn_of(student)
    if rpn is None:
        if isinstance(student, SingleStageDetector):
            return check_one_stage_student(student)
        raise TypeError(f'the student ({type(student).__name__}) has no RPN head and is not a '
                        'one-stage detector: feature mimic samples its RoIs from the '
                        'student\'s proposals (an RPN) or detections (a one-stage head). Use '
                        'an RPN, a two-stage or a one-stage mmdet student (e.g. '
                        'faster-rcnn_r50_fpn, retinanet_r50_fpn, fcos, rtmdet, yolox)')
    return check_rpn_head(rpn)


# What every refusal of a one-stage student says is supported (check_one_stage_student).
SUPPORTED_ONE_STAGE = (
    'supported: mmdet SingleStageDetector subclasses that keep its loss (RetinaNet, FCOS, ATSS, '
    'GFL, RTMDet, YOLOX, ...) with a BaseDenseHead that keeps mmdet\'s loss (forward, then '
    'loss_by_feat) and has predict_by_feat')


def check_one_stage_student(student: nn.Module) -> str:
    """A one-stage student's mimic RoIs are its own post-NMS detections: its head's
    ``predict_by_feat`` on the training step's head outputs, the one-stage analogue of the RPN's
    proposals (docs/advanced_guides/distiller.md, "One-stage students"). The step runs the head
    as mmdet's ``SingleStageDetector.loss`` does (forward, ``loss_by_feat``), so a detector or a
    head that overrides that loss is refused: the distiller would silently skip what it adds.

    Returns:
        ``'one_stage'``.

    Raises:
        TypeError: names the detector or head, why, and what is supported.
    """
    name, head = type(student).__name__, getattr(student, 'bbox_head', None)
    if type(student).loss is not SingleStageDetector.loss:
        raise TypeError(f'the one-stage student {name} is refused: it overrides '
                        'SingleStageDetector.loss, and the mimic step runs the head as that '
                        f'loss does, so it would skip what {name}.loss adds; '
                        f'{SUPPORTED_ONE_STAGE}')
    if not isinstance(head, BaseDenseHead) or not callable(getattr(head, 'predict_by_feat',
                                                                   None)):
        raise TypeError(f'the one-stage student {name} is refused: its bbox_head '
                        f'{type(head).__name__} is not an mmdet BaseDenseHead with '
                        'predict_by_feat, so it gives no detections to sample the mimic RoIs '
                        f'from; {SUPPORTED_ONE_STAGE}')
    if type(head).loss is not BaseDenseHead.loss:
        raise TypeError(f'the one-stage student {name} is refused: its bbox_head '
                        f'{type(head).__name__} overrides BaseDenseHead.loss, so its losses '
                        'are not forward + loss_by_feat on outputs the mimic RoIs can be '
                        f'predicted from; {SUPPORTED_ONE_STAGE}')
    return 'one_stage'


#: the most candidates per level the mimic RoIs' predict step keeps before NMS (RetinaNet's, FCOS's,
#: ATSS's and GFL's own test setting; RTMDet tests with 30000)
ONE_STAGE_NMS_PRE = 1000


def one_stage_proposal_cfg(test_cfg: Optional[dict]) -> ConfigDict:
    """The predict settings of a one-stage student's mimic RoIs: the head's ``test_cfg`` with
    ``score_thr=0`` and ``nms_pre`` at most :data:`ONE_STAGE_NMS_PRE`.

    A freshly initialised head scores every box at its prior probability (RetinaNet's 0.01),
    under the test threshold (0.05), so with the test settings as they are the mimic would get
    no RoI until the head has learned; the RPN's proposals have no score threshold either.
    ``nms_pre`` caps what the class-wise NMS sorts (128 RoIs per image are sampled from the
    result; docs/advanced_guides/distiller.md, "One-stage students", gives the cost).
    """
    cfg = ConfigDict(copy.deepcopy(test_cfg or {}))
    cfg.score_thr = 0.0
    if 'nms_pre' in cfg and (cfg.nms_pre is None or cfg.nms_pre <= 0 or
                             cfg.nms_pre > ONE_STAGE_NMS_PRE):
        cfg.nms_pre = ONE_STAGE_NMS_PRE
    return cfg


def check_rpn_head(rpn: nn.Module, role: str = 'student') -> str:
    """How the mimic step runs an RPN head, taking its losses and proposals as mmdet's
    ``TwoStageDetector.loss`` does with that head (docs/advanced_guides/distiller.md, "Students").

    Returns:
        ``'rpn'``: ``RPNHead`` and subclasses (forward, ``loss_by_feat``, the exact cheap
        pass of ``proposals.rpn_proposals``); ``'dense'``: any other ``BaseDenseHead`` that
        keeps mmdet's ``loss_and_predict`` (forward, ``loss_by_feat``, its own
        ``predict_by_feat`` on all its outputs: ``proposals.dense_head_proposals``);
        ``'cascade'``: ``CascadeRPNHead`` (no single forward: its own ``loss_and_predict``).

    Raises:
        TypeError: one line naming the head type, why it is refused and what is supported.
    """
    name = type(rpn).__name__
    if isinstance(rpn, StageCascadeRPNHead):  # an RPNHead subclass: before that branch
        raise TypeError(
            f'the {role} RPN head {name} is refused: it is one stage of a CascadeRPNHead and '
            'mmdet cannot predict with it on its own (its predict step reads the stages of a '
            'CascadeRPNHead); use rpn_head=dict(type=\'CascadeRPNHead\', num_stages=..., '
            f'stages=[...]) as mmdet\'s cascade_rpn configs do; {SUPPORTED_RPN_HEADS}')
    if isinstance(rpn, RPNHead):
        return 'rpn'
    if isinstance(rpn, CascadeRPNHead):
        return 'cascade'
    if isinstance(rpn, EmbeddingRPNHead):
        raise TypeError(
            f'the {role} RPN head {name} (Sparse R-CNN, QueryInst) is refused: its proposals '
            'are learned boxes, the same for every image, not proposals computed from the '
            'features, so there are none to sample the mimic RoIs from (and its RoI head '
            f'needs its proposal features); {SUPPORTED_RPN_HEADS}')
    if isinstance(rpn, BaseDenseHead) and \
            type(rpn).loss_and_predict is BaseDenseHead.loss_and_predict:
        return 'dense'
    raise TypeError(
        f'the {role} RPN head {name} is refused: it is not an mmdet BaseDenseHead with the '
        'standard loss_and_predict, so the distiller cannot take its losses and proposals '
        f'the way mmdet\'s two-stage detectors do; {SUPPORTED_RPN_HEADS}')


def check_logits_mimic_heads(student_rpn: nn.Module, teacher_rpn: Optional[nn.Module]) -> None:
    """Logits mimic compares ``(cls_scores, bbox_preds)`` of two RPN heads on the same
    anchors: both must be ``RPNHead``s."""
    if student_rpn is None:
        raise TypeError('logits mimic (mimic_input \'rpn_outputs\') compares two RPN heads\' '
                        'outputs; a one-stage student has no RPN head: use feature mimic '
                        '(ProposalSampledL2Loss)')
    if teacher_rpn is None:
        raise TypeError('logits mimic needs a teacher with an RPN head')
    for role, head in (('student', student_rpn), ('teacher', teacher_rpn)):
        if not isinstance(head, RPNHead) or isinstance(head, StageCascadeRPNHead):
            raise TypeError(
                f'logits mimic (mimic_input \'rpn_outputs\') compares the (cls_scores, '
                f'bbox_preds) of two RPNHead-type heads on the same anchors, but the {role} '
                f'RPN head is {type(head).__name__}: use feature mimic '
                '(ProposalSampledL2Loss) or an RPNHead')


def declared_stride(detector: nn.Module, index: int, num_maps: int) -> Optional[int]:
    """The stride the detector's RPN anchors assume for map ``index``, if it declares one."""
    rpn = rpn_of(detector)
    if rpn is None or not hasattr(rpn, 'prior_generator'):
        return None
    strides = rpn.prior_generator.strides
    if len(strides) != num_maps:
        return None
    stride = strides[index]
    return stride[0] if isinstance(stride, (tuple, list)) else stride


@torch.no_grad()
def probe_mimic_maps(student: nn.Module, student_feature: int, teacher: nn.Module,
                     teacher_feature: int) -> Tuple[Tuple[int, float], Tuple[int, float]]:
    """Run both networks once on a small blank input (eval mode) to read the mimicked maps'
    channels and strides; check them against the RPNs' anchor strides.

    Returns:
        ``((student_channels, student_stride), (teacher_channels, teacher_stride))``.
    """
    results = []
    for name, net, index in (('student', student, student_feature),
                             ('teacher', teacher, teacher_feature)):
        channels, measured, num_maps = measure_feature_map(net, index, name)
        declared = declared_stride(net, index, num_maps)
        if declared is not None and declared != measured:
            raise ValueError(f'the {name} map {index} has stride {measured} (measured) but '
                             f'its RPN anchors assume stride {declared}')
        results.append((channels, declared if declared is not None else measured))
    return tuple(results)


def check_channels_and_strides(s_channels: int, t_channels: int, connector: Optional[nn.Module],
                               student_stride: float, student_input_scale: float,
                               teacher_stride: float) -> None:
    """Without a connector the maps need equal channels; with the input scale and the
    connector's upsampling both maps must end up with the same stride."""
    if connector is None and s_channels != t_channels:
        raise ValueError(f'without a connector the student map ({s_channels} channels) and '
                         f'the teacher map ({t_channels} channels) must have equal channels')
    scale = connector.scale_factor if connector is not None else 1
    effective_stride = student_stride / student_input_scale / scale
    if effective_stride != teacher_stride:
        raise ValueError(
            f'the student map (stride {student_stride}, input scale '
            f'{student_input_scale}, connector x{scale}) has effective stride '
            f'{effective_stride} but the teacher map has stride {teacher_stride}')


def check_cache_servable(mimic_input: Optional[str], with_roi_mimic: bool, student: nn.Module,
                         data_preprocessor: OptConfigType) -> None:
    """The teacher cache serves the mimicked map only: refuse logits mimic, no feature mimic,
    two-stage students and mimic, and batch augments (each names what to remove)."""
    if mimic_input not in ('rois', 'images'):
        raise ValueError(f'teacher_cache stores the mimicked map only; mimic_input '
                         f'{mimic_input!r} (logits mimic or no feature mimic) needs '
                         'the live teacher: remove teacher_cache')
    if with_roi_mimic or getattr(student, 'with_roi_head', False):
        raise ValueError('teacher_cache serves the mimicked map only; a two-stage student or '
                         'two-stage mimic needs the live teacher: remove teacher_cache')
    if (data_preprocessor or {}).get('batch_augments'):
        raise ValueError('teacher_cache: the data preprocessor\'s batch_augments change the '
                         'teacher input per batch and cannot be cached; remove them or '
                         'teacher_cache')


def check_batch_resize(data_preprocessor: OptConfigType, student: nn.Module,
                       scale: float) -> None:
    """At ``student_input_scale < 1`` a batch augment that resizes the batch to multiples of
    ``size_divisor`` (YOLOX's ``BatchSyncRandomResize``) must leave the student whole cells
    at its backbone's coarsest stride once resized by the scale; otherwise a PAFPN neck fails
    deep inside its forward on a half-cell map.

    Raises:
        ValueError: names ``data_preprocessor.batch_augments[i].size_divisor``, the stride, the
            scale and the value that works (``wrap_with_teacher`` sets it itself).
    """
    augments = (data_preprocessor or {}).get('batch_augments') or []
    if scale == 1.0 or not any('size_divisor' in aug for aug in augments):
        return
    coarsest = backbone_coarsest_stride(student)
    for i, aug in enumerate(augments):
        divisor = aug.get('size_divisor')
        if divisor is not None and (divisor * scale) % coarsest:
            raise ValueError(
                f'data_preprocessor.batch_augments[{i}].size_divisor={divisor} at '
                f'student_input_scale={scale:g} gives the student batches of a multiple of '
                f'{divisor * scale:g} pixels, not of its backbone\'s coarsest stride {coarsest:g}: '
                f'set size_divisor to a multiple of {coarsest / scale:g} (tools/train.py '
                '--student-scale does)')
