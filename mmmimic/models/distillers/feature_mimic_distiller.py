"""FeatureMimicDistiller: a frozen teacher detector teaches a student detector with an RPN.

The training step is the paper's Fig. 1 (docs/advanced_guides/distiller.md, "One training step") and reads top to
bottom in :meth:`FeatureMimicDistiller.loss`. Prediction runs the student only.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import (CascadeRPNHead, EmbeddingRPNHead, RPNHead,
                                      StageCascadeRPNHead)
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.detectors.base import BaseDetector
from mmdet.models.detectors.rpn import RPN
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmmimic.utils.checkpoint import load_state_dict
from ..data_preprocessors.preprocessor_cfg import input_scale_of, plain_preprocessor
from ..losses import BaseMimicLoss
from .cross_scale import resize_batch
from ..dense_heads.proposals import candidate_ladder, dense_head_proposals, rpn_proposals
from .teacher_cache import build_distiller_cache, cached_teacher_feats

# Stage-1 sampling of the paper: 128 RoIs per image, positives:negatives = 1:1, positives and
# negatives by IoU with the ground truth as in Fast R-CNN; RoIs only from the student's proposals.
# ``proposal=None``: the proposals the student's RPN gives in its own step (a two-stage student's
# ``train_cfg.rpn_proposal``, else the RPN's ``test_cfg``, i.e. its predict step).
# ``proposal_candidates``: the predict step runs on the best 500 anchors per level first, then on
# the best 1000 for the images that pass cannot prove, and keeps a result only where it provably
# equals the full step's (proposals.py); ``None``: off. Chosen by benchmarks/mimic_proposals.py
# (docs/advanced_guides/distiller.md, "Speed"): 500 proves itself on nearly every image of a small map, 1000 on
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
_NORMALISATION_KEYS = ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr')


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: str) -> None:
    """Load a teacher's weights strictly, with errors that say exactly what is wrong.

    Args:
        teacher: the built teacher detector.
        checkpoint: path of an mmengine/mmdet checkpoint (``state_dict`` inside or a raw state
            dict; a ``module.`` prefix from DDP is stripped).

    Raises:
        FileNotFoundError: the file does not exist (message names the path).
        KeyError: the checkpoint's keys do not match the teacher's (lists missing/unexpected).
    """
    if checkpoint is None:
        raise ValueError('the teacher needs a checkpoint (teacher_ckpt); a randomly initialised '
                         'teacher is refused')
    state_dict = load_state_dict(checkpoint, what='teacher checkpoint')
    result = teacher.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(
            f'teacher checkpoint {checkpoint} does not match the teacher model:\n'
            f'  missing keys ({len(result.missing_keys)}): {result.missing_keys}\n'
            f'  unexpected keys ({len(result.unexpected_keys)}): {result.unexpected_keys}')


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
    size = 256
    was_training = detector.training
    detector.eval()
    param = next(detector.parameters())
    feats = detector.extract_feat(param.new_zeros(1, 3, size, size))
    detector.train(was_training)
    if not -len(feats) <= index < len(feats):
        raise ValueError(
            f'{name}_feature={index} is out of range: the {name} ({type(detector).__name__}) '
            f'extract_feat returns {len(feats)} feature map(s) (valid: {-len(feats)}..'
            f'{len(feats) - 1})')
    return feats[index].shape[1], size / feats[index].shape[-1], len(feats)


def _drop_teacher_state(module: nn.Module, state_dict: dict, prefix: str,
                        local_metadata: dict) -> dict:
    """State-dict hook: checkpoints hold the student (and connector), never the teacher."""
    teacher_prefix = prefix + 'teacher.'
    for key in [k for k in state_dict if k.startswith(teacher_prefix)]:
        del state_dict[key]
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in [k for k in metadata if k == teacher_prefix[:-1] or
                    k.startswith(teacher_prefix)]:
            del metadata[key]
    return state_dict


@MODELS.register_module()
class FeatureMimicDistiller(BaseDetector):
    """Proposal-sampled feature mimic (Li, Jin, Yan, CVPR 2017), stage 1.

    Args:
        student: config of any mmdet detector with an RPN (``RPN`` or a two-stage detector)
            whose RPN head :meth:`check_rpn_head` supports (``RPNHead``, ``CascadeRPNHead``,
            dense heads such as ``FCOSHead`` / ``GARPNHead``; refused at build time otherwise).
        teacher: path of the teacher's config file (its ``model`` is used) or a model config dict.
        teacher_ckpt: the teacher's checkpoint, loaded strictly.
        student_feature: index into ``student.extract_feat(...)`` (the neck level, or the backbone
            ``out_indices`` entry when there is no neck) of the mimicked map. Default: last map.
        teacher_feature: the same for the teacher.
        connector: connector config (``Conv1x1Connector`` by default). ``in_channels`` and
            ``out_channels`` may be omitted: they are read from the networks; when given they
            are checked against them.
        mimic_loss: a :class:`~mmmimic.models.losses.BaseMimicLoss` of ``mimic_input``
            ``'rois'``, ``'images'`` or ``'rpn_outputs'`` (checked at build time):
            ``ProposalSampledL2Loss`` (Eq. 4, default), ``PooledFeatureL2Loss`` (Eq. 3),
            ``WholeFeatureL2Loss`` or ``RPNLogitsL2Loss`` (Table 4 baselines). ``loss_weight`` is
            lambda_1. ``None``: no feature mimic (two-stage mimic on the RoI head only).
        mimic_cfg: ``proposal`` (post-processing of the student RPN for the mimic proposals;
            default: a two-stage student's ``train_cfg.rpn_proposal``, else the RPN's own
            ``test_cfg``), ``proposal_candidates`` (anchors per level of the exact cheap pass
            of :func:`~mmmimic.models.dense_heads.proposals.rpn_proposals`, or a strictly
            increasing ladder of them, default ``(500, 1000)``; ``None``: off),
            ``assigner`` and ``sampler`` (mmdet task utils), merged recursively
            into ``DEFAULT_MIMIC_CFG`` (:func:`merge_mimic_cfg`: give only the fields that
            change; ``_delete_=True`` replaces a default dict as a whole).
        student_input_scale: factor by which the student's input is resized (cross-scale mimic,
            Sec. 3.5; 0.5 = half size) in training and prediction, see :meth:`student_inputs`.
            The mimicked maps must then have the same stride in the teacher's input pixels
            (a deconv neck or ``Deconv2xConnector`` restores the lost factor 2).
        roi_mimic_cls_loss: two-stage mimic (Sec. 3.4): a ``BaseMimicLoss`` of ``mimic_input``
            ``'roi_head_outputs'`` (``RoILogitsL2Loss``) between the student's and the
            teacher's RoI-head classification logits on the same sampled RoIs
            (``loss_mimic_cls``). Needs two-stage student and teacher. ``None``: off.
        roi_mimic_bbox_loss: the same for the box deltas (``loss_mimic_bbox``).
        data_preprocessor: defaults to the student's; the teacher's must normalise identically.
        teacher_cache: serve the teacher's mimicked map from a
            :class:`~.teacher_cache.TeacherFeatureCache` instead of running the teacher:
            ``dict(dir=..., pipeline=train_pipeline, dtype='float16', max_gb=50, verify=0,
            missing='error')`` (docs/advanced_guides/distiller.md, "Teacher-feature cache"). ``None``: live.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 student: ConfigType,
                 teacher: Union[str, ConfigType],
                 teacher_ckpt: Optional[str],
                 student_feature: int = -1,
                 teacher_feature: int = -1,
                 connector: OptConfigType = dict(type='Conv1x1Connector'),
                 mimic_loss: ConfigType = dict(type='ProposalSampledL2Loss', loss_weight=1.0),
                 mimic_cfg: OptConfigType = None,
                 student_input_scale: float = 1.0,
                 roi_mimic_cls_loss: OptConfigType = None,
                 roi_mimic_bbox_loss: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 teacher_cache: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        self._check_settings(student_feature, teacher_feature, mimic_cfg, student_input_scale)
        student = copy.deepcopy(ConfigDict(student))
        teacher_cfg = self._teacher_model_cfg(teacher)
        data_preprocessor = self._distiller_preprocessor(data_preprocessor, student,
                                                         student_input_scale)
        self.check_normalisation(data_preprocessor, teacher_cfg.get('data_preprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student_feature = student_feature
        self.teacher_feature = teacher_feature
        self.student_input_scale = float(student_input_scale)

        self.student = MODELS.build(student)
        self._student_rpn_kind = self.check_student_rpn(self.student)
        self._build_teacher(teacher_cfg, teacher_ckpt)
        self._build_mimic(mimic_loss, mimic_cfg, roi_mimic_cls_loss, roi_mimic_bbox_loss)
        self._build_connector(connector)
        self.teacher_cache = None
        if teacher_cache is not None:  # after the connector: needs mimic_input and the stride
            self.teacher_cache, self._teacher_cache_plan = build_distiller_cache(
                self, teacher_cache, self._teacher_model_cfg(teacher), teacher_ckpt,
                data_preprocessor)  # the teacher config as given (building changes its copy)
            self._teacher_cache_verified = False

    # ----------------------------------------------------------------- construction
    def _build_teacher(self, teacher_cfg: ConfigDict, teacher_ckpt: Optional[str]) -> None:
        """The one place the teacher is built: loaded strictly from ``teacher_ckpt``, frozen, in
        eval mode, marked initialised (``init_weights()`` keeps the checkpoint's weights) and
        left out of this model's checkpoints."""
        self.teacher = MODELS.build(teacher_cfg)
        load_teacher_checkpoint(self.teacher, teacher_ckpt)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher._is_init = True
        self.teacher_ckpt = teacher_ckpt
        self._register_state_dict_hook(_drop_teacher_state)

    def _build_mimic(self, mimic_loss: OptConfigType, mimic_cfg: OptConfigType,
                     roi_mimic_cls_loss: OptConfigType,
                     roi_mimic_bbox_loss: OptConfigType) -> None:
        """Build the mimic losses (each checked against its slot), the RoI-head check of
        two-stage mimic, the effective ``mimic_cfg`` and its assigner and sampler."""
        self.mimic_loss = self._build_loss('mimic_loss', mimic_loss,
                                           ('rois', 'images', 'rpn_outputs'))
        self.roi_mimic_cls_loss = self._build_loss('roi_mimic_cls_loss', roi_mimic_cls_loss,
                                                   ('roi_head_outputs', ))
        self.roi_mimic_bbox_loss = self._build_loss('roi_mimic_bbox_loss', roi_mimic_bbox_loss,
                                                    ('roi_head_outputs', ))
        for name, net in (('student', self.student), ('teacher', self.teacher)):
            if self.with_roi_mimic and not getattr(net, 'with_roi_head', False):
                raise TypeError(f'two-stage mimic (roi_mimic_cls_loss / roi_mimic_bbox_loss) '
                                f'needs a two-stage {name} with a roi_head, got '
                                f'{type(net).__name__}')
        mimic_cfg = merge_mimic_cfg(mimic_cfg)
        candidate_ladder(mimic_cfg.proposal_candidates, 'mimic_cfg.proposal_candidates')
        if mimic_cfg.proposal is None:
            student_train_cfg = self.student.train_cfg or {}
            mimic_cfg.proposal = copy.deepcopy(
                student_train_cfg.get('rpn_proposal', self.student_rpn.test_cfg))
        self.mimic_cfg = mimic_cfg
        self.roi_assigner = TASK_UTILS.build(mimic_cfg.assigner)
        self.roi_sampler = TASK_UTILS.build(mimic_cfg.sampler, default_args=dict(context=self))

    def _build_connector(self, connector: OptConfigType) -> None:
        """Read the mimicked maps' channels and strides from the networks, build the connector
        (channels filled in or checked) and check that both maps end up with the same stride.
        Logits mimic compares RPN outputs, not maps: no connector; feature mimic off: none."""
        (s_channels, self.student_stride), (t_channels, self.teacher_stride) = \
            self._probe_mimic_maps()
        self.connector = None
        if self.mimic_input == 'rpn_outputs':
            self._check_logits_mimic_heads()
        if self.mimic_input not in ('rois', 'images'):
            return
        if connector is not None:
            connector = ConfigDict(connector)
            connector.setdefault('in_channels', s_channels)
            connector.setdefault('out_channels', t_channels)
            self.connector = MODELS.build(connector)
            self.connector.check_channels(s_channels, t_channels)
        elif s_channels != t_channels:
            raise ValueError(f'without a connector the student map ({s_channels} channels) and '
                             f'the teacher map ({t_channels} channels) must have equal channels')
        scale = self.connector.scale_factor if self.connector is not None else 1
        effective_stride = self.student_stride / self.student_input_scale / scale
        if effective_stride != self.teacher_stride:
            raise ValueError(
                f'the student map (stride {self.student_stride}, input scale '
                f'{self.student_input_scale}, connector x{scale}) has effective stride '
                f'{effective_stride} but the teacher map has stride {self.teacher_stride}')

    @property
    def mimic_input(self) -> Optional[str]:
        """What the feature-mimic loss compares (its ``mimic_input``); ``None`` when it is off."""
        return self.mimic_loss.mimic_input if self.mimic_loss is not None else None

    @property
    def with_roi_mimic(self) -> bool:
        """Whether two-stage mimic (logits/deltas L2 on the RoI heads) is on."""
        return self.roi_mimic_cls_loss is not None or self.roi_mimic_bbox_loss is not None

    @staticmethod
    def _check_settings(student_feature: int, teacher_feature: int, mimic_cfg: OptConfigType,
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

    @staticmethod
    def _build_loss(slot: str, cfg: OptConfigType,
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

    @staticmethod
    def _teacher_model_cfg(teacher: Union[str, ConfigType]) -> ConfigDict:
        if isinstance(teacher, str):
            if not osp.isfile(teacher):
                raise FileNotFoundError(f'teacher config not found: {teacher}')
            return copy.deepcopy(Config.fromfile(teacher).model)
        return copy.deepcopy(ConfigDict(teacher))

    @staticmethod
    def _distiller_preprocessor(data_preprocessor: OptConfigType, student: ConfigDict,
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

    @staticmethod
    def check_normalisation(student_dp: OptConfigType, teacher_dp: OptConfigType) -> None:
        if not student_dp or not teacher_dp:
            return
        for key in _NORMALISATION_KEYS:
            s_val, t_val = student_dp.get(key), teacher_dp.get(key)
            if s_val is not None and t_val is not None and list(
                    s_val if isinstance(s_val, (list, tuple)) else [s_val]) != list(
                        t_val if isinstance(t_val, (list, tuple)) else [t_val]):
                raise ValueError(f'teacher and student normalise images differently: '
                                 f'{key}={t_val} (teacher) vs {s_val} (student)')

    @staticmethod
    def rpn_of(detector: nn.Module) -> Optional[nn.Module]:
        rpn = getattr(detector, 'rpn_head', None)
        if rpn is None and isinstance(detector, RPN):
            rpn = detector.bbox_head
        return rpn

    @classmethod
    def check_student_rpn(cls, student: nn.Module) -> str:
        """Refuse, at build time, a student the mimic step cannot take proposals from.

        Args:
            student: the built student detector.

        Returns:
            how its RPN head is run (:meth:`check_rpn_head`).

        Raises:
            TypeError: the student has no RPN head, or one that is not supported (one line naming
                the head type, why, and what is supported).
        """
        rpn = cls.rpn_of(student)
        if rpn is None:
            raise TypeError(f'the student ({type(student).__name__}) has no RPN head: feature '
                            'mimic samples its RoIs from the student RPN\'s proposals. Use an '
                            'RPN or a two-stage student (e.g. mmdet\'s faster-rcnn_r50_fpn with '
                            'your backbone and neck); one-stage students (RetinaNet, FCOS, '
                            'YOLOX, RTMDet) are not supported yet')
        return cls.check_rpn_head(rpn)

    @staticmethod
    def check_rpn_head(rpn: nn.Module, role: str = 'student') -> str:
        """How the mimic step runs an RPN head, taking its losses and proposals as mmdet's
        ``TwoStageDetector.loss`` does with that head (docs/advanced_guides/distiller.md, "Students").

        Returns:
            ``'rpn'``: ``RPNHead`` and subclasses (forward, ``loss_by_feat``, the exact cheap
            pass of :func:`rpn_proposals`); ``'dense'``: any other ``BaseDenseHead`` that keeps
            mmdet's ``loss_and_predict`` (forward, ``loss_by_feat``, its own ``predict_by_feat``
            on all its outputs: :func:`dense_head_proposals`); ``'cascade'``: ``CascadeRPNHead``
            (no single forward: its own ``loss_and_predict``).

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

    def _check_logits_mimic_heads(self) -> None:
        """Logits mimic compares ``(cls_scores, bbox_preds)`` of two RPN heads on the same
        anchors: both must be ``RPNHead``s."""
        if self.teacher_rpn is None:
            raise TypeError('logits mimic needs a teacher with an RPN head')
        for role, head in (('student', self.student_rpn), ('teacher', self.teacher_rpn)):
            if not isinstance(head, RPNHead) or isinstance(head, StageCascadeRPNHead):
                raise TypeError(
                    f'logits mimic (mimic_input \'rpn_outputs\') compares the (cls_scores, '
                    f'bbox_preds) of two RPNHead-type heads on the same anchors, but the {role} '
                    f'RPN head is {type(head).__name__}: use feature mimic '
                    '(ProposalSampledL2Loss) or an RPNHead')

    @property
    def student_rpn(self) -> Optional[nn.Module]:
        """The student's RPN head (``rpn_head``, or ``bbox_head`` of an ``RPN`` detector)."""
        return self.rpn_of(self.student)

    @property
    def teacher_rpn(self) -> Optional[nn.Module]:
        """The teacher's RPN head, if it has one."""
        return self.rpn_of(self.teacher)

    def _declared_stride(self, detector: nn.Module, index: int, num_maps: int) -> Optional[int]:
        rpn = self.rpn_of(detector)
        if rpn is None or not hasattr(rpn, 'prior_generator'):
            return None
        strides = rpn.prior_generator.strides
        if len(strides) != num_maps:
            return None
        stride = strides[index]
        return stride[0] if isinstance(stride, (tuple, list)) else stride

    @torch.no_grad()
    def _probe_mimic_maps(self) -> Tuple[Tuple[int, float], Tuple[int, float]]:
        """Run both networks once on a small blank input (eval mode) to read the mimicked maps'
        channels and strides; check them against the RPNs' anchor strides.

        Returns:
            ``((student_channels, student_stride), (teacher_channels, teacher_stride))``.
        """
        results = []
        for name, net, index in (('student', self.student, self.student_feature),
                                 ('teacher', self.teacher, self.teacher_feature)):
            channels, measured, num_maps = measure_feature_map(net, index, name)
            declared = self._declared_stride(net, index, num_maps)
            if declared is not None and declared != measured:
                raise ValueError(f'the {name} map {index} has stride {measured} (measured) but '
                                 f'its RPN anchors assume stride {declared}')
            results.append((channels, declared if declared is not None else measured))
        return tuple(results)

    # ----------------------------------------------------------------- teacher hygiene
    def train(self, mode: bool = True) -> 'FeatureMimicDistiller':
        """Set the student (and connector) to ``mode``; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        """Checkpoints carry no teacher: the teacher always comes from ``teacher_ckpt``, so its
        entries are (re)filled from the loaded teacher before the children read the dict."""
        teacher_prefix = prefix + 'teacher.'
        for key in [k for k in state_dict if k.startswith(teacher_prefix)]:
            state_dict.pop(key)
        for key, value in self.teacher.state_dict().items():
            state_dict[teacher_prefix + key] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ----------------------------------------------------------------- the mimic step
    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Student features (what mmdet tools call on a detector).

        Args:
            batch_inputs: ``(B, 3, H, W)`` images.

        Returns:
            the student's multi-level features.
        """
        return self.student.extract_feat(batch_inputs)

    @torch.no_grad()
    def extract_teacher_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Teacher features, frozen and without autograd.

        Args:
            batch_inputs: ``(B, 3, H, W)`` full-size images.

        Returns:
            the teacher's multi-level features.
        """
        return self.teacher.extract_feat(batch_inputs)

    def student_inputs(self, batch_inputs: Tensor,
                       batch_data_samples: SampleList) -> Tuple[Tensor, SampleList]:
        """The batch the student sees: the teacher's batch resized by ``student_input_scale``.

        Identity at scale 1; otherwise :func:`~.cross_scale.resize_batch` (images, gt boxes,
        ``img_shape``, ``pad_shape``, ``batch_input_shape``, ``scale_factor``).

        Args:
            batch_inputs: ``(B, 3, H, W)`` the teacher's (full-size) images.
            batch_data_samples: their data samples (not modified).

        Returns:
            ``(inputs, data_samples)`` for the student.
        """
        if self.student_input_scale == 1.0:
            return batch_inputs, batch_data_samples
        return resize_batch(batch_inputs, batch_data_samples, self.student_input_scale)

    def to_teacher_coords(self, rois: Tensor) -> Tensor:
        """RoIs ``(N, 5)`` in the student's input pixels -> the teacher's (``/ scale``).

        For scale 0.5 this is exact in floating point, so a RoI crops the same cells of the
        student map (stride ``s / 2`` on the half image after the x2 deconv) and of the teacher
        map (stride ``s`` on the full image). Returns ``rois`` itself at scale 1.
        """
        if self.student_input_scale == 1.0:
            return rois
        return torch.cat([rois[:, :1], rois[:, 1:] / self.student_input_scale], dim=1)

    def sample_rois(self, rpn_results_list: List[InstanceData],
                    batch_data_samples: SampleList) -> Tensor:
        """Assign the student's proposals to the ground truth and sample the mimic RoIs
        (``mimic_cfg.assigner`` / ``mimic_cfg.sampler``).

        Args:
            rpn_results_list: the student RPN's proposals per image (``bboxes``, after NMS).
            batch_data_samples: data samples with ``gt_instances`` (and optionally
                ``ignored_instances``).

        Returns:
            ``(N, 5)`` RoIs ``(batch_index, x1, y1, x2, y2)``, positives first within each image,
            every row a proposal of the student (``add_gt_as_proposals=False`` by default).
        """
        sampling_results = self._assign_and_sample(self.roi_assigner, self.roi_sampler,
                                                   rpn_results_list, batch_data_samples)
        return bbox2roi([res.priors for res in sampling_results])

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """One mimic training step (the paper's Fig. 1; docs/advanced_guides/distiller.md, "One training step").

        Args:
            batch_inputs: ``(B, 3, H, W)`` normalised, padded images.
            batch_data_samples: data samples with ``gt_instances``.

        Returns:
            the student RPN's GT losses (mmdet's ``loss_rpn_cls``, ``loss_rpn_bbox``; other
            heads' keys get the ``rpn_`` prefix as in mmdet's two-stage detectors), the RoI
            head's for two-stage students, ``loss_mimic`` and, with two-stage mimic,
            ``loss_mimic_cls`` / ``loss_mimic_bbox``.
        """
        # The student on its (cross-scale: resized) batch; its RPN learns class-agnostic gt.
        inputs, samples = self.student_inputs(batch_inputs, batch_data_samples)
        student_feats = self.student.extract_feat(inputs)
        rpn_samples = self._class_agnostic(samples)
        rpn_outs, losses, proposals = self._student_rpn_step(student_feats, rpn_samples)
        # The frozen teacher on the full-size batch; the student's proposals, computed once.
        teacher_feats = (self.extract_teacher_feat(batch_inputs) if self.teacher_cache is None
                         else cached_teacher_feats(self, batch_inputs, batch_data_samples))
        if rpn_outs is not None:  # (a CascadeRPNHead gave its proposals with its losses)
            proposals = self._student_proposals(rpn_outs, rpn_samples)
        if self.mimic_loss is not None:
            losses['loss_mimic'] = self._mimic_loss(
                student_feats, teacher_feats, rpn_outs,
                self._mimic_rois(proposals, rpn_samples, batch_inputs, batch_data_samples))
        if getattr(self.student, 'with_roi_head', False):  # second stage (+ Sec. 3.4 mimic)
            losses.update(self.loss_roi_stage(student_feats, teacher_feats, proposals, samples))
        return losses

    @staticmethod
    def _class_agnostic(batch_data_samples: SampleList) -> SampleList:
        """Copies of the data samples with all gt labels 0, as mmdet gives its RPNs."""
        rpn_samples = copy.deepcopy(batch_data_samples)
        for data_sample in rpn_samples:
            data_sample.gt_instances.labels = torch.zeros_like(data_sample.gt_instances.labels)
        return rpn_samples

    def _student_rpn_step(self, student_feats: Tuple[Tensor], rpn_samples: SampleList
                          ) -> Tuple[Optional[tuple], Dict[str, Tensor],
                                     Optional[List[InstanceData]]]:
        """The student RPN head's forward and ground-truth losses.

        Returns:
            ``(rpn_outs, losses, None)``; a ``CascadeRPNHead`` has no single forward (each stage
            refines the anchors the next one runs on), so its own ``loss_and_predict`` gives
            ``(None, losses, proposals)``, as mmdet's ``TwoStageDetector.loss`` calls it.
        """
        if self._student_rpn_kind == 'cascade':
            losses, proposals = self.student_rpn.loss_and_predict(
                student_feats, rpn_samples, proposal_cfg=self.mimic_cfg.proposal)
            return None, self._rpn_loss_keys(losses), proposals
        rpn_outs = self.student_rpn(student_feats)
        return rpn_outs, self._rpn_gt_losses(rpn_outs, rpn_samples), None

    def _rpn_gt_losses(self, rpn_outs: tuple, rpn_samples: SampleList) -> Dict[str, Tensor]:
        """The student RPN head's ground-truth losses (mmdet's ``rpn_``-prefixed keys)."""
        batch_gt_instances, batch_gt_ignore, batch_img_metas = unpack_gt_instances(rpn_samples)
        return self._rpn_loss_keys(self.student_rpn.loss_by_feat(
            *rpn_outs, batch_gt_instances, batch_img_metas, batch_gt_ignore))

    @staticmethod
    def _rpn_loss_keys(losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """mmdet's ``TwoStageDetector`` renaming: a loss key without ``rpn`` gets the prefix
        ``rpn_`` (an FCOS RPN's ``loss_cls`` would clash with the RoI head's). ``RPNHead``'s
        keys (``loss_rpn_cls``, ``loss_rpn_bbox``) are left as they are."""
        for key in list(losses):
            if 'loss' in key and 'rpn' not in key:
                losses[f'rpn_{key}'] = losses.pop(key)
        return losses

    def _student_proposals(self, rpn_outs: tuple,
                           rpn_samples: SampleList) -> Optional[List[InstanceData]]:
        """The student RPN's own predict step on its head outputs (after NMS, with
        ``mimic_cfg.proposal``); ``None`` when neither the mimic RoIs nor a RoI head need them."""
        if self.mimic_input != 'rois' and not getattr(self.student, 'with_roi_head', False):
            return None
        batch_img_metas = [data_sample.metainfo for data_sample in rpn_samples]
        if self._student_rpn_kind == 'dense':  # its own predict step on all its outputs
            return dense_head_proposals(self.student_rpn, rpn_outs, batch_img_metas,
                                        self.mimic_cfg.proposal)
        return rpn_proposals(self.student_rpn, *rpn_outs, batch_img_metas=batch_img_metas,
                             cfg=self.mimic_cfg.proposal,
                             candidates=self.mimic_cfg.proposal_candidates)

    def _mimic_rois(self, proposals: Optional[List[InstanceData]], rpn_samples: SampleList,
                    batch_inputs: Tensor, batch_data_samples: SampleList) -> Optional[Tensor]:
        """The RoIs the feature-mimic loss compares, in the teacher's input pixels.

        ``'rois'`` (the paper's method): the student's proposals sampled against the gt (128 per
        image, 1:1) and mapped to the teacher's pixels (cross-scale: ``/ scale``), where both
        maps have the teacher's stride. ``'images'`` (Table 4 baseline): each image's valid
        (unpadded) region. Logits mimic: ``None``.
        """
        if self.mimic_input == 'rois':
            return self.to_teacher_coords(self.sample_rois(proposals, rpn_samples))
        if self.mimic_input == 'images':
            return self._image_rois(batch_data_samples, batch_inputs)
        return None

    def _mimic_loss(self, student_feats: Tuple[Tensor], teacher_feats: Tuple[Tensor],
                    rpn_outs: tuple, rois: Optional[Tensor]) -> Tensor:
        """``loss_mimic``: the mimic loss on the connected student map and the teacher map in
        ``rois`` or, for logits mimic (Table 4 baseline), on the two RPN heads' outputs."""
        if self.mimic_input == 'rpn_outputs':
            return self.mimic_loss(rpn_outs, self.teacher_rpn(teacher_feats))
        student_map = student_feats[self.student_feature]
        if self.connector is not None:
            student_map = self.connector(student_map)
        teacher_map = teacher_feats[self.teacher_feature]
        self._check_map_shapes(student_map, teacher_map)
        return self.mimic_loss(student_map, teacher_map, rois, self.teacher_stride)

    def loss_roi_stage(self, student_feats: Tuple[Tensor], teacher_feats: Tuple[Tensor],
                       rpn_results_list: List[InstanceData],
                       batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of a two-stage student's RoI head on the student's proposals.

        Without two-stage mimic: the RoI head's own ``loss`` (stage 2, ground truth only).
        With it (Sec. 3.4): the student RoI head's assigner and sampler pick the RoIs once; both
        RoI heads run on those identical RoI tensors (the teacher's on the teacher's features,
        frozen, no autograd); the student's gt losses plus the L2 of its classification logits
        (``loss_mimic_cls``) and box deltas (``loss_mimic_bbox``) to the teacher's.

        Args:
            student_feats: student features.
            teacher_feats: teacher features (full-size input).
            rpn_results_list: the student's proposals per image (``bboxes``, student input
                pixels).
            batch_data_samples: the student's data samples with ground truth.

        Returns:
            the RoI head's losses (``loss_cls``, ``acc``, ``loss_bbox``) and, with two-stage
            mimic, ``loss_mimic_cls`` / ``loss_mimic_bbox``.
        """
        roi_head = self.student.roi_head
        if not self.with_roi_mimic:
            return roi_head.loss(student_feats, rpn_results_list, batch_data_samples)

        sampling_results = self.sample_roi_head_rois(student_feats, rpn_results_list,
                                                     batch_data_samples)
        rois = bbox2roi([res.priors for res in sampling_results])
        student_out = roi_head._bbox_forward(student_feats, rois)
        losses = roi_head.bbox_head.loss_and_target(
            cls_score=student_out['cls_score'],
            bbox_pred=student_out['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=roi_head.train_cfg)['loss_bbox']
        teacher_out = self.teacher_roi_forward(teacher_feats, self.to_teacher_coords(rois))
        if self.roi_mimic_cls_loss is not None:
            losses['loss_mimic_cls'] = self.roi_mimic_cls_loss(student_out['cls_score'],
                                                               teacher_out['cls_score'])
        if self.roi_mimic_bbox_loss is not None:
            losses['loss_mimic_bbox'] = self.roi_mimic_bbox_loss(student_out['bbox_pred'],
                                                                 teacher_out['bbox_pred'])
        return losses

    def sample_roi_head_rois(self, student_feats: Tuple[Tensor],
                             rpn_results_list: List[InstanceData],
                             batch_data_samples: SampleList) -> List[SamplingResult]:
        """Assign and sample the RoI head's RoIs as mmdet's ``StandardRoIHead.loss`` does
        (its ``bbox_assigner``/``bbox_sampler``, i.e. ``train_cfg.rcnn``, gt added as proposals
        when configured).

        Args:
            student_feats: student features (for samplers that look at them, e.g. OHEM).
            rpn_results_list: proposals per image.
            batch_data_samples: data samples with ground truth.

        Returns:
            mmdet ``SamplingResult`` per image.
        """
        roi_head = self.student.roi_head
        return self._assign_and_sample(roi_head.bbox_assigner, roi_head.bbox_sampler,
                                       rpn_results_list, batch_data_samples, student_feats)

    @staticmethod
    def _assign_and_sample(assigner, sampler, rpn_results_list: List[InstanceData],
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

    @torch.no_grad()
    def teacher_roi_forward(self, teacher_feats: Tuple[Tensor], rois: Tensor) -> dict:
        """The teacher RoI head's box branch on given RoIs (frozen, no autograd).

        Args:
            teacher_feats: teacher features.
            rois: ``(N, 5)`` RoIs in the teacher's input pixels.

        Returns:
            dict with ``cls_score`` ``(N, C + 1)`` and ``bbox_pred`` ``(N, 4)`` or ``(N, 4C)``.
        """
        return self.teacher.roi_head._bbox_forward(teacher_feats, rois)

    @staticmethod
    def _image_rois(batch_data_samples: SampleList, batch_inputs: Tensor) -> Tensor:
        """One RoI per image: its valid (unpadded) region in input pixels."""
        boxes = [
            batch_inputs.new_tensor([[0, 0, s.img_shape[1], s.img_shape[0]]])
            for s in batch_data_samples
        ]
        return bbox2roi(boxes)

    @staticmethod
    def _check_map_shapes(student_map: Tensor, teacher_map: Tensor) -> None:
        if student_map.shape != teacher_map.shape:
            raise ValueError(f'the student map after the connector {tuple(student_map.shape)} '
                             f'and the teacher map {tuple(teacher_map.shape)} differ in shape')

    # ----------------------------------------------------------------- inference = student
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict with the student only, so any mmdet metric scores the student.

        Args:
            batch_inputs: ``(B, 3, H, W)`` images.
            batch_data_samples: data samples with meta information.
            rescale: whether boxes go back to the original image size.

        Returns:
            data samples with ``pred_instances``.
        """
        if self.student_input_scale == 1.0:
            return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)
        # Cross-scale: the student runs on the resized input; its samples' scale_factor maps
        # that input to the original image, so rescale=True gives original coordinates.
        inputs, samples = self.student_inputs(batch_inputs, batch_data_samples)
        results = self.student.predict(inputs, samples, rescale=rescale)
        for data_sample, result in zip(batch_data_samples, results):
            pred = result.pred_instances
            if not rescale:  # the caller's (full-size) input pixels
                pred.bboxes = pred.bboxes / self.student_input_scale
            data_sample.pred_instances = pred
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> tuple:
        """The student's raw forward (``mode='tensor'``) on its (possibly resized) input."""
        if self.student_input_scale != 1.0:
            batch_inputs, batch_data_samples = (
                self.student_inputs(batch_inputs, batch_data_samples) if batch_data_samples
                is not None else (resize_batch(batch_inputs, [], self.student_input_scale)[0],
                                  None))
        return self.student._forward(batch_inputs, batch_data_samples)
