"""FeatureMimicDistiller: a frozen teacher detector teaches a student detector with an RPN.

The training step is the paper's Fig. 1 (docs/advanced_guides/distiller.md, "One training step")
and reads top to
bottom in :meth:`FeatureMimicDistiller.loss`. Prediction runs the student only. The teacher's
lifecycle is :class:`~.teacher.FrozenTeacherMixin`, the build-time checks are :mod:`.checks`,
and the teacher's maps of a batch come from one :class:`~.teacher_features.TeacherFeatures`
(live or cached).
"""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors.base import BaseDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from ..dense_heads.proposals import (candidate_ladder, dense_head_proposals,
                                     one_stage_detections, rpn_proposals)
from . import checks, pyramid
from .checks import DEFAULT_MIMIC_CFG, measure_feature_map, merge_mimic_cfg  # noqa: F401
from .cross_scale import resize_batch, student_batch, to_teacher_coords
from .sampling import (assign_and_sample, check_map_shapes, class_agnostic, image_rois,
                       rpn_loss_keys)
from .teacher import FrozenTeacherMixin, load_teacher_checkpoint, teacher_model_cfg  # noqa: F401
from .teacher_features import CachedTeacherFeatures, LiveTeacherFeatures, cache_settings


@MODELS.register_module()
class FeatureMimicDistiller(FrozenTeacherMixin, BaseDetector):
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
            :class:`~mmmimic.teacher_cache.TeacherFeatureCache` instead of running the teacher:
            ``dict(dir=..., pipeline=train_pipeline, dtype='float16', max_gb=50, verify=0,
            missing='error')`` (docs/advanced_guides/distiller.md, "Teacher-feature cache").
            ``None``: live.
        init_cfg: mmengine init config.
        mimic_levels: pyramid mimic (docs/advanced_guides/distiller.md, "Pyramids"):
            ``'auto'`` (every student level that has a teacher level of its stride in the
            teacher's pixels) or ``[dict(student=i, teacher=j[, connector=cfg]), ...]``, one
            connector per pair (``connectors``; ``connector`` is the template, a pair's own
            ``connector`` overrides it). Strides are measured on the networks; a pair whose
            strides do not meet is refused. ``None`` (default): the single pair
            ``student_feature`` -> ``teacher_feature`` with one ``connector``, as always.
            Feature mimic on RoIs (``mimic_input='rois'``) only; ``teacher_cache`` then stores
            every teacher level a pair mimics.
        level_rule: the pair(s) each sampled RoI is compared on: ``'scale'`` (default, mmdet's
            ``SingleRoIExtractor.map_roi_levels`` on the RoI's size in the student's pixels,
            over the pairs in stride order), ``'all'`` (every pair) or a pair index.
        finest_scale: ``finest_scale`` of the ``'scale'`` rule (mmdet's default 56).
    """

    # what other code calls on the class: the build-time checks (.checks)
    check_normalisation = staticmethod(checks.check_normalisation)
    rpn_of = staticmethod(checks.rpn_of)
    check_student_rpn = staticmethod(checks.check_student_rpn)
    check_rpn_head = staticmethod(checks.check_rpn_head)
    _class_agnostic = staticmethod(class_agnostic)  # benchmarks and tests call it

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
                 init_cfg: OptMultiConfig = None,
                 mimic_levels: Union[None, str, List[dict]] = None,
                 level_rule: Union[str, int] = 'scale',
                 finest_scale: float = pyramid.FINEST_SCALE) -> None:
        checks.check_settings(student_feature, teacher_feature, mimic_cfg, student_input_scale)
        if mimic_levels is not None:
            checks.check_pyramid_settings(student_feature, teacher_feature)
        cache_cfg = cache_settings(teacher_cache) if teacher_cache is not None else None
        student = copy.deepcopy(ConfigDict(student))
        teacher_cfg = teacher_model_cfg(teacher)
        data_preprocessor = checks.distiller_preprocessor(data_preprocessor, student,
                                                          student_input_scale)
        checks.check_normalisation(data_preprocessor, teacher_cfg.get('data_preprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student_feature = student_feature
        self.teacher_feature = teacher_feature
        self.student_input_scale = float(student_input_scale)

        self.student = MODELS.build(student)
        self._student_rpn_kind = checks.check_student_rpn(self.student)
        checks.check_batch_resize(data_preprocessor, self.student, self.student_input_scale)
        self.build_teacher(teacher_cfg, teacher_ckpt)
        self._build_mimic(mimic_loss, mimic_cfg, roi_mimic_cls_loss, roi_mimic_bbox_loss)
        #: the level pairs of pyramid mimic (``None``: the single pair of ``connector``)
        self.mimic_pairs: Optional[List[dict]] = None
        if mimic_levels is None:
            self._build_connector(connector)
        else:
            self._build_pyramid(connector, mimic_levels, level_rule, finest_scale)
        #: the teacher's maps of a batch: the live teacher, or the cache
        self.teacher_features = LiveTeacherFeatures(self.teacher)
        if cache_cfg is not None:  # after the connector: needs mimic_input and the stride
            checks.check_cache_servable(self.mimic_input, self.with_roi_mimic, self.student,
                                        data_preprocessor)
            self.teacher_features = CachedTeacherFeatures.open(
                cache_cfg, self.teacher_model_cfg, teacher_ckpt, self.teacher_features,
                self.teacher_feature, int(self.teacher_stride), self.data_preprocessor,
                data_preprocessor, pairs=self.mimic_pairs)

    @property
    def teacher_cache(self):
        """The :class:`~mmmimic.teacher_cache.TeacherFeatureCache` the teacher's maps come
        from, or ``None`` (the live teacher)."""
        return getattr(self.teacher_features, 'cache', None)

    # ----------------------------------------------------------------- construction
    def _build_mimic(self, mimic_loss: OptConfigType, mimic_cfg: OptConfigType,
                     roi_mimic_cls_loss: OptConfigType,
                     roi_mimic_bbox_loss: OptConfigType) -> None:
        """Build the mimic losses (each checked against its slot), the RoI-head check of
        two-stage mimic, the effective ``mimic_cfg`` and its assigner and sampler."""
        self.mimic_loss = checks.build_mimic_loss('mimic_loss', mimic_loss,
                                                  ('rois', 'images', 'rpn_outputs'))
        self.roi_mimic_cls_loss = checks.build_mimic_loss(
            'roi_mimic_cls_loss', roi_mimic_cls_loss, ('roi_head_outputs', ))
        self.roi_mimic_bbox_loss = checks.build_mimic_loss(
            'roi_mimic_bbox_loss', roi_mimic_bbox_loss, ('roi_head_outputs', ))
        if self.with_roi_mimic:
            checks.check_roi_mimic_networks(self.student, self.teacher)
        mimic_cfg = merge_mimic_cfg(mimic_cfg)
        candidate_ladder(mimic_cfg.proposal_candidates, 'mimic_cfg.proposal_candidates')
        if mimic_cfg.proposal is None and self.one_stage:  # its detections, any score
            mimic_cfg.proposal = checks.one_stage_proposal_cfg(self.student.bbox_head.test_cfg)
        elif mimic_cfg.proposal is None:
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
            checks.probe_mimic_maps(self.student, self.student_feature, self.teacher,
                                    self.teacher_feature)
        self.connector = None
        if self.mimic_input == 'rpn_outputs':
            checks.check_logits_mimic_heads(self.student_rpn, self.teacher_rpn)
        if self.mimic_input not in ('rois', 'images'):
            return
        if connector is not None:
            connector = ConfigDict(connector)
            connector.setdefault('in_channels', s_channels)
            connector.setdefault('out_channels', t_channels)
            self.connector = MODELS.build(connector)
            self.connector.check_channels(s_channels, t_channels)
        checks.check_channels_and_strides(s_channels, t_channels, self.connector,
                                          self.student_stride, self.student_input_scale,
                                          self.teacher_stride)

    def _build_pyramid(self, connector: OptConfigType, mimic_levels: Union[str, List[dict]],
                       level_rule: Union[str, int], finest_scale: float) -> None:
        """Pyramid mimic: the level pairs and one connector per pair (``connectors``), built and
        checked by :func:`~.pyramid.build_pairs`; logs the pairing table."""
        pyramid.check_mimic_input(self.mimic_input, type(self.mimic_loss).__name__)
        self.connector = None
        self.mimic_pairs, self.connectors, table = pyramid.build_pairs(
            self.student, self.teacher, mimic_levels, connector, level_rule,
            self.student_input_scale)
        self.level_rule, self.finest_scale = level_rule, float(finest_scale)
        # the finest pair's strides (what single-level code reads)
        self.student_stride = self.mimic_pairs[0]['student_stride']
        self.teacher_stride = self.mimic_pairs[0]['teacher_stride']
        print_log(table, logger='current')

    @property
    def mimic_input(self) -> Optional[str]:
        """What the feature-mimic loss compares (its ``mimic_input``); ``None`` when it is off."""
        return self.mimic_loss.mimic_input if self.mimic_loss is not None else None

    @property
    def with_roi_mimic(self) -> bool:
        """Whether two-stage mimic (logits/deltas L2 on the RoI heads) is on."""
        return self.roi_mimic_cls_loss is not None or self.roi_mimic_bbox_loss is not None

    @property
    def student_rpn(self) -> Optional[torch.nn.Module]:
        """The student's RPN head (``rpn_head``, or ``bbox_head`` of an ``RPN`` detector);
        ``None`` for a one-stage student."""
        return checks.rpn_of(self.student)

    @property
    def one_stage(self) -> bool:
        """Whether the student is a one-stage detector (its detections are the mimic RoIs)."""
        return self._student_rpn_kind == 'one_stage'

    @property
    def bbox_head(self) -> torch.nn.Module:
        """A one-stage student's head, so that mmdet hooks which set ``model.bbox_head``
        attributes (``YOLOXModeSwitchHook``'s ``use_l1``) act on the student.

        Raises:
            AttributeError: the student is not one-stage (``hasattr`` is then false).
        """
        if not self.one_stage:
            raise AttributeError('bbox_head: the distiller exposes the head of a one-stage '
                                 'student only')
        return self.student.bbox_head

    @property
    def teacher_rpn(self) -> Optional[torch.nn.Module]:
        """The teacher's RPN head, if it has one."""
        return checks.rpn_of(self.teacher)

    # ----------------------------------------------------------------- the mimic step
    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Student features (what mmdet tools call on a detector).

        Args:
            batch_inputs: ``(B, 3, H, W)`` images.

        Returns:
            the student's multi-level features.
        """
        return self.student.extract_feat(batch_inputs)

    def student_inputs(self, batch_inputs: Tensor,
                       batch_data_samples: SampleList) -> Tuple[Tensor, SampleList]:
        """The batch the student sees (:func:`~.cross_scale.student_batch` at
        ``student_input_scale``): ``(inputs, data_samples)``, the inputs not modified."""
        return student_batch(batch_inputs, batch_data_samples, self.student_input_scale)

    def to_teacher_coords(self, rois: Tensor) -> Tensor:
        """RoIs ``(N, 5)`` in the student's input pixels -> the teacher's
        (:func:`~.cross_scale.to_teacher_coords`)."""
        return to_teacher_coords(rois, self.student_input_scale)

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
        sampling_results = assign_and_sample(self.roi_assigner, self.roi_sampler,
                                             rpn_results_list, batch_data_samples)
        return bbox2roi([res.priors for res in sampling_results])

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """One mimic training step (the paper's Fig. 1; docs/advanced_guides/distiller.md, "One
        training step").

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
        rpn_samples = class_agnostic(samples)
        if self.one_stage:  # its head's own gt losses; its detections are the proposals
            rpn_outs, losses, proposals = self._one_stage_step(student_feats, samples)
        else:
            rpn_outs, losses, proposals = self._student_rpn_step(student_feats, rpn_samples)
        # The frozen teacher (live or cached) on the full-size batch; the student's proposals,
        # computed once.
        teacher_feats = self.teacher_features(batch_inputs, batch_data_samples, self.training)
        if rpn_outs is not None:  # (a CascadeRPNHead gave its proposals with its losses)
            proposals = self._student_proposals(rpn_outs, rpn_samples)
        if self.mimic_loss is not None and self.mimic_pairs is not None:
            losses['loss_mimic'] = self._pyramid_mimic_loss(
                student_feats, teacher_feats, self.sample_rois(proposals, rpn_samples))
        elif self.mimic_loss is not None:
            losses['loss_mimic'] = self._mimic_loss(
                student_feats, teacher_feats, rpn_outs,
                self._mimic_rois(proposals, rpn_samples, batch_inputs, batch_data_samples))
        if getattr(self.student, 'with_roi_head', False):  # second stage (+ Sec. 3.4 mimic)
            losses.update(self.loss_roi_stage(student_feats, teacher_feats, proposals, samples))
        return losses

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
            return None, rpn_loss_keys(losses), proposals
        rpn_outs = self.student_rpn(student_feats)
        return rpn_outs, self._rpn_gt_losses(rpn_outs, rpn_samples), None

    def _one_stage_step(self, student_feats: Tuple[Tensor], samples: SampleList
                        ) -> Tuple[tuple, Dict[str, Tensor], None]:
        """A one-stage student's head forward and ground-truth losses, as mmdet's
        ``SingleStageDetector.loss`` takes them (its own keys, e.g. ``loss_cls``,
        ``loss_bbox``); the detections come from the same outputs in
        :meth:`_student_proposals`."""
        head = self.student.bbox_head
        outs = head(student_feats)
        batch_gt_instances, batch_gt_ignore, batch_img_metas = unpack_gt_instances(samples)
        return outs, head.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                       batch_gt_ignore), None

    def _rpn_gt_losses(self, rpn_outs: tuple, rpn_samples: SampleList) -> Dict[str, Tensor]:
        """The student RPN head's ground-truth losses (mmdet's ``rpn_``-prefixed keys)."""
        batch_gt_instances, batch_gt_ignore, batch_img_metas = unpack_gt_instances(rpn_samples)
        return rpn_loss_keys(self.student_rpn.loss_by_feat(
            *rpn_outs, batch_gt_instances, batch_img_metas, batch_gt_ignore))

    def _student_proposals(self, rpn_outs: tuple,
                           rpn_samples: SampleList) -> Optional[List[InstanceData]]:
        """The student RPN's own predict step on its head outputs (after NMS, with
        ``mimic_cfg.proposal``); ``None`` when neither the mimic RoIs nor a RoI head need them."""
        if self.mimic_input != 'rois' and not getattr(self.student, 'with_roi_head', False):
            return None
        batch_img_metas = [data_sample.metainfo for data_sample in rpn_samples]
        if self.one_stage:  # its post-NMS detections
            return one_stage_detections(self.student.bbox_head, rpn_outs, batch_img_metas,
                                        self.mimic_cfg.proposal)
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
            return image_rois(batch_data_samples, batch_inputs)
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
        check_map_shapes(student_map, teacher_map)
        return self.mimic_loss(student_map, teacher_map, rois, self.teacher_stride)

    def _pyramid_mimic_loss(self, student_feats: Tuple[Tensor], teacher_feats: Tuple[Tensor],
                            rois: Tensor) -> Tensor:
        """``loss_mimic`` of pyramid mimic: each sampled RoI (student pixels) gets its pair(s)
        by ``level_rule``; the RoIs go to the teacher's pixels (``/ scale``, exact) and each
        pair's connected student map is compared with its teacher map
        (:func:`~.pyramid.pyramid_loss`: per-RoI normalised terms summed, over the number of
        sampled RoIs)."""
        levels = pyramid.roi_levels(rois, self.level_rule, len(self.mimic_pairs),
                                    self.finest_scale)
        preds, targets, strides = [], [], []
        for pair, connector in zip(self.mimic_pairs, self.connectors):
            pred = connector(student_feats[pair['student']])
            target = teacher_feats[pair['teacher']]
            check_map_shapes(pred, target)
            preds.append(pred)
            targets.append(target)
            strides.append(pair['teacher_stride'])
        return pyramid.pyramid_loss(self.mimic_loss, preds, targets, strides,
                                    self.to_teacher_coords(rois), levels)

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

        # assigned and sampled as mmdet's StandardRoIHead.loss does (its bbox_assigner and
        # bbox_sampler: train_cfg.rcnn; the features go to samplers that use them, e.g. OHEM)
        sampling_results = assign_and_sample(roi_head.bbox_assigner, roi_head.bbox_sampler,
                                             rpn_results_list, batch_data_samples, student_feats)
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
