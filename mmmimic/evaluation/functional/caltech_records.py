"""Per-frame records of a Caltech evaluation and the block bootstrap over test frames.

:func:`load_frame_records` matches every frame of a result folder once
(:func:`~mmmimic.evaluation.functional.match_caltech`) and keeps the matched detections frame by
frame (:class:`FrameRecords`), so MR-2 / MR-4 / AP of any resample of the frames is recomputed
without matching again. :func:`bootstrap_paired` resamples the test frames (in blocks of
consecutive frames of a video: :func:`resample_counts`), the same draw for two models and every
seed, and gives a percentile :class:`Interval` of their mean difference.

All metric values are in % (as ``CaltechMRMetric`` reports them): MR-2 / MR-4 lower is better,
AP higher is better. numpy/scipy only (imports neither torch nor mmdet).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .caltech_eval import (MR_RANGES, ap_from_counts, get_setting, match_caltech,
                           reference_points)
from .caltech_results import load_detections, load_ground_truth

#: metrics a :class:`FrameRecords` can recompute (AP at the setting's IoU threshold)
METRICS = ('MR-2', 'MR-4', 'AP')
#: size limit (resamples x columns) of one block of the vectorised bootstrap
MAX_BOOT_CELLS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    Attributes:
        estimate: the point estimate (a mean over seeds, or the statistic on all frames).
        lo, hi: the interval bounds; NaN when it cannot be computed (see ``note``).
        n: number of values (seeds) for a t-interval; resamples used for a bootstrap.
        method: ``'t'`` or ``'bootstrap'``.
        conf: confidence level.
        std: sample standard deviation (ddof=1) of the values (t) or of the bootstrap
            statistics (the bootstrap standard error); NaN for one value.
        note: why there is no interval, or '' .
    """

    estimate: float
    lo: float
    hi: float
    n: int
    method: str
    conf: float = 0.95
    std: float = math.nan
    note: str = ''

    @property
    def ok(self) -> bool:
        """Whether the interval exists (finite bounds)."""
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def format(self, digits: int = 1) -> str:
        """``-9.5 [-14.1, -4.9]``, or ``41.2 [no interval: one seed]``."""
        if not self.ok:
            return f'{self.estimate:.{digits}f} [no interval: {self.note or "undefined"}]'
        return f'{self.estimate:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]'

    def __str__(self) -> str:
        return self.format()

    def as_dict(self) -> Dict:
        """A JSON-ready dict (NaN bounds become None)."""
        def num(v):
            return v if math.isfinite(v) else None
        return dict(estimate=num(self.estimate), lo=num(self.lo), hi=num(self.hi), n=self.n,
                    method=self.method, conf=self.conf, std=num(self.std), note=self.note)


def check_conf(conf: float) -> None:
    """Refuse a confidence level outside (0, 1)."""
    if not 0 < conf < 1:
        raise ValueError(f'conf must be in (0, 1), got {conf}')


def common_seeds(named: Mapping[str, Mapping[int, object]]) -> List[int]:
    """The seeds of several per-seed mappings, which must all be the same set."""
    names = list(named)
    ref = set(named[names[0]])
    for name in names[1:]:
        other = set(named[name])
        if other != ref:
            raise ValueError(f'seed sets differ: {names[0]} has {sorted(ref)}, {name} has '
                             f'{sorted(other)} (only in {names[0]}: {sorted(ref - other)}; only '
                             f'in {name}: {sorted(other - ref)})')
    if not ref:
        raise ValueError(f'no seeds in {", ".join(names)}')
    return sorted(ref)


@dataclass(eq=False)
class FrameRecords:
    """One model's matched detections on a test set for one Caltech setting, frame by frame.

    Each frame is filtered and matched once (:func:`~mmmimic.evaluation.functional.match_caltech`;
    matching never looks across frames), so MR-2 / MR-4 / AP of any multiset of the frames is a
    weighted cumulative sum over the detections: :meth:`values`.

    Attributes:
        frames: ``(set, video, 0-based frame)`` of every frame.
        gt_per_frame: (F,) non-ignore gts of each frame.
        det_frame: (D,) frame index of each counted detection (TP or FP; detections matched to an
            ignore region or removed by the height filter are not kept), in the order of the
            toolbox's curve (descending score; ties in the toolbox's order).
        det_tp: (D,) whether each detection is a true positive.
        det_score: (D,) scores.
        setting: the Caltech setting name.
        log_floor: the log-average floor (None: dbEval).
        name: the model's name (messages only).
    """

    frames: Tuple[Tuple[int, int, int], ...]
    gt_per_frame: np.ndarray
    det_frame: np.ndarray
    det_tp: np.ndarray
    det_score: np.ndarray
    setting: str = 'Reasonable'
    log_floor: Optional[float] = None
    name: str = ''

    @classmethod
    def from_match(cls, match: Dict, frames: Sequence[Tuple[int, int, int]],
                   setting: str = 'Reasonable', log_floor: Optional[float] = None,
                   name: str = '') -> 'FrameRecords':
        """Records from one setting of :func:`~mmmimic.evaluation.functional.match_caltech`."""
        status, scores, order = match['dt_status'], match['dt_scores'], match['dt_order']
        if len(frames) != match['num_images']:
            raise ValueError(f'{name}: {len(frames)} frames for {match["num_images"]} images')
        o = order[status[order] != -1]  # the same steps as compute_roc
        o = o[np.argsort(-scores[o], kind='stable')]
        return cls(tuple(tuple(int(x) for x in f) for f in frames),
                   np.asarray(match['gt_per_image'], dtype=np.int64), match['dt_img'][o],
                   status[o] == 1, scores[o], setting, log_floor, name)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def _design(self) -> Dict:
        """Sparse (frames x columns) count matrices, built once: the metrics of a resample are
        then products of its frame counts with these (no pass over every detection).

        MR: one column per TP (in curve order): ``mr_fp[f, i]`` = FPs of frame ``f`` ranked
        between TP ``i-1`` and TP ``i`` (FPs after the last TP change no TP's FPPI). AP: one
        column per distinct score that has a TP: ``ap_tp``/``ap_fp`` count the frame's TPs/FPs
        from the previous such score (exclusive) to this one (inclusive); a precision maximum is
        always at such a point, and the other points add no recall.
        """
        if getattr(self, '_design_cache', None) is None:
            from scipy import sparse
            num = self.num_frames
            tp_pos = np.flatnonzero(self.det_tp)
            fp_pos = np.flatnonzero(~self.det_tp)
            n_tp = len(tp_pos)

            def count_matrix(rows, cols, n_cols):
                keep = cols < n_cols
                return sparse.csr_matrix(
                    (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(num, n_cols))

            seg = np.searchsorted(tp_pos, fp_pos)  # TPs ranked before each FP
            new_score = np.ones(len(self.det_score), dtype=bool)
            new_score[1:] = self.det_score[1:] != self.det_score[:-1]
            group = np.cumsum(new_score) - 1  # distinct-score group of each detection
            tp_groups = np.unique(group[tp_pos])
            col = np.searchsorted(tp_groups, group)  # the first TP group at or after the det's
            self._design_cache = dict(
                tp_frame=self.det_frame[tp_pos],
                mr_fp=count_matrix(self.det_frame[fp_pos], seg, n_tp),
                ap_tp=count_matrix(self.det_frame[tp_pos], col[tp_pos], len(tp_groups)),
                ap_fp=count_matrix(self.det_frame[fp_pos], col[fp_pos], len(tp_groups)))
        return self._design_cache

    def values(self, metric: str = 'MR-2', counts: Optional[np.ndarray] = None) -> np.ndarray:
        """The metric, in %, on weighted multisets of the frames.

        Args:
            metric: ``'MR-2'``, ``'MR-4'`` or ``'AP'``.
            counts: (B, F) how many times each frame is drawn in each of B resamples; None: every
                frame once (then the result equals ``evaluate_caltech`` on all frames).

        Returns:
            (B,) values (shape (1,) when ``counts`` is None); NaN for a resample without any
            non-ignore gt.
        """
        if metric not in METRICS:
            raise KeyError(f'unknown metric {metric!r}; known: {", ".join(METRICS)}')
        counts = (np.ones((1, self.num_frames)) if counts is None else np.asarray(
            counts, dtype=np.float64))
        if counts.ndim != 2 or counts.shape[1] != self.num_frames:
            raise ValueError(f'{self.name or "FrameRecords"}: counts must have shape (B, '
                             f'{self.num_frames}), got {counts.shape}')
        design = self._design()
        n_img = counts.sum(axis=1)
        n_gt = counts @ self.gt_per_frame.astype(np.float64)
        out = np.empty(len(counts))
        n_cols = design['ap_tp'].shape[1] if metric == 'AP' else len(design['tp_frame'])
        step = max(1, MAX_BOOT_CELLS // max(1, n_cols))
        for start in range(0, len(counts), step):
            c, gt = counts[start:start + step], n_gt[start:start + step]
            if metric == 'AP':
                cum_tp = np.cumsum(np.asarray(design['ap_tp'].T @ c.T).T, axis=1)
                cum_fp = np.cumsum(np.asarray(design['ap_fp'].T @ c.T).T, axis=1)
                out[start:start + step] = ap_from_counts(cum_tp, cum_fp, gt)
                continue
            # compute_roc + miss_rates_at on every row: the recall of the last point with
            # fppi <= ref is the recall of the last TP whose FPPI (FPs ranked before it) is
            # <= ref; those FPPIs are non-decreasing along a row, so they are counted
            cum_tp = np.cumsum(c[:, design['tp_frame']], axis=1)
            fp_before = np.cumsum(np.asarray(design['mr_fp'].T @ c.T).T, axis=1)
            with np.errstate(divide='ignore', invalid='ignore'):
                fppi = fp_before / n_img[start:start + step, None]
                recall = cum_tp / gt[:, None]
            refs = reference_points(*MR_RANGES[metric])
            mrs = np.ones((len(c), len(refs)))
            if recall.shape[1]:
                rows = np.arange(len(c))
                for j, ref in enumerate(refs):
                    k = np.count_nonzero(fppi <= ref, axis=1)
                    mrs[:, j] = 1 - np.where(k > 0, recall[rows, np.maximum(k - 1, 0)], 0.)
            if self.log_floor is not None:
                mrs = np.maximum(mrs, self.log_floor)
            with np.errstate(divide='ignore'):
                mr = np.exp(np.mean(np.log(mrs), axis=1))
            out[start:start + step] = np.where(gt > 0, mr, np.nan)
        return 100 * out

    def value(self, metric: str = 'MR-2') -> float:
        """The metric (%) on all frames, each once."""
        return float(self.values(metric)[0])


def load_frame_records(res_dirs: Sequence[str],
                       ann: str,
                       setting: str = 'Reasonable',
                       sets: Sequence[int] = tuple(range(6, 11)),
                       img_list: Optional[str] = None,
                       skip: int = 30,
                       resize_dets: bool = True,
                       log_floor: Optional[float] = None) -> List[FrameRecords]:
    """:class:`FrameRecords` of result folders, the ground truth read once.

    Args:
        res_dirs: result folders ``.../res/<algorithm>`` with ``setXX/VYYY.txt`` (what
            ``CaltechMRMetric(save_result_files=True)`` writes).
        ann: annotations (a bbGt folder such as the converted data dir's ``annotations/``, or a
            vbb root; see :func:`~mmmimic.evaluation.functional.load_ground_truth`).
        setting: the Caltech setting.
        sets, img_list, skip: the evaluated frames (as ``score_result_dirs``; e.g.
            ``sets=(2,), img_list='data/vtest/vtest_test.txt'``).
        resize_dets, log_floor: as ``score_result_dirs``.

    Returns:
        one :class:`FrameRecords` per folder, in order, named by the folder.

    Raises:
        KeyError: an unknown setting. FileNotFoundError, ValueError: missing or bad files (see
        the loaders; the message names the file).
    """
    get_setting(setting)
    frames, gts = load_ground_truth(ann, sets, img_list, skip)
    img_ids = [f'set{s:02d}_V{v:03d}_I{f:05d}' for s, v, f in frames]
    records = []
    for res_dir in res_dirs:
        dts = load_detections(res_dir, frames)
        match = match_caltech(gts, dts, [setting], resize_dets=resize_dets,
                              img_ids=img_ids)[setting]
        records.append(FrameRecords.from_match(match, frames, setting, log_floor, res_dir))
    return records


def resample_counts(frames: Sequence[Tuple[int, int, int]],
                    n_boot: int = 1000,
                    seed: int = 0,
                    block: int = 1) -> np.ndarray:
    """How often each frame is drawn in each of ``n_boot`` bootstrap resamples.

    Args:
        frames: ``(set, video, frame)`` of the test frames.
        n_boot: number of resamples.
        seed: seed of the generator (the result is a function of the arguments only).
        block: frames per resampling unit. 1: frames are drawn independently. k > 1: each video's
            frames, in frame order, are cut into blocks of k consecutive frames (the last block
            of a video may be shorter) and whole blocks are drawn, as many as there are: a block
            bootstrap, for test frames taken from a video, whose neighbours are alike.

    Returns:
        (n_boot, F) float array of counts.
    """
    if n_boot < 1 or block < 1:
        raise ValueError(f'n_boot and block must be >= 1, got n_boot={n_boot}, block={block}')
    num = len(frames)
    if num == 0:
        raise ValueError('resample_counts: no frames')
    order = sorted(range(num), key=lambda i: tuple(frames[i]))
    block_of = np.empty(num, dtype=np.int64)
    n_blocks, prev_video, pos = 0, None, 0
    for i in order:
        video = tuple(frames[i][:2])
        if video != prev_video or pos == block:
            n_blocks, pos, prev_video = n_blocks + 1, 0, video
        block_of[i] = n_blocks - 1
        pos += 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_blocks, size=(n_boot, n_blocks))
    block_counts = np.bincount((draws + n_blocks * np.arange(n_boot)[:, None]).ravel(),
                               minlength=n_boot * n_blocks).reshape(n_boot, n_blocks)
    return block_counts[:, block_of].astype(np.float64)


def check_records(named: Mapping[str, Mapping[int, FrameRecords]]) -> List[int]:
    """The common seeds of ``{name: {seed: FrameRecords}}``, all scored on the same frames and
    setting (else a TypeError / ValueError that names the odd one)."""
    for name, per_seed in named.items():
        if not isinstance(per_seed, Mapping):
            raise TypeError(f'{name} must be a {{seed: FrameRecords}} dict (the seed pairs the '
                            f'models), got a {type(per_seed).__name__}')
    seeds = common_seeds(named)
    first = None
    for name, per_seed in named.items():
        for s in seeds:
            rec = per_seed[s]
            if not isinstance(rec, FrameRecords):
                raise TypeError(f'{name}[{s}] is a {type(rec).__name__}, not FrameRecords')
            if first is None:
                first = (f'{name}[{s}]', rec)
            elif rec.frames != first[1].frames or rec.setting != first[1].setting:
                raise ValueError(f'{name}[{s}] ({rec.name}) is scored on other frames or another '
                                 f'setting than {first[0]} ({first[1].name}): '
                                 f'{rec.num_frames} vs {first[1].num_frames} frames, '
                                 f'{rec.setting!r} vs {first[1].setting!r}')
    return seeds


def percentile_interval(estimate: float, stats: np.ndarray, conf: float, what: str) -> Interval:
    """The percentile :class:`Interval` of bootstrap ``stats`` around ``estimate``; no bounds
    (``note``: ``what``) when some resample's statistic is not finite."""
    good = stats[np.isfinite(stats)]
    if len(good) < len(stats):
        return Interval(estimate, math.nan, math.nan, len(good), 'bootstrap', conf,
                        note=f'{what} in {len(stats) - len(good)} of {len(stats)} resamples')
    lo, hi = np.percentile(good, [50 * (1 - conf), 50 * (1 + conf)])
    return Interval(estimate, float(lo), float(hi), len(good), 'bootstrap', conf,
                    float(good.std(ddof=1)) if len(good) > 1 else math.nan)


def bootstrap_paired(records_a: Mapping[int, FrameRecords],
                     records_b: Mapping[int, FrameRecords],
                     metric: str = 'MR-2',
                     n_boot: int = 1000,
                     conf: float = 0.95,
                     seed: int = 0,
                     block: int = 1) -> Interval:
    """Frame-bootstrap interval of the mean over seeds of ``metric(a) - metric(b)``.

    Every resample draws test frames with replacement (:func:`resample_counts`) and applies
    the same draw to both models and every seed: the frames are the resampling unit, the seeds
    stay fixed. The interval is the percentile interval of the resampled statistic; the
    estimate is the statistic on all frames (equal to the mean paired difference of the
    metric's values).

    Args:
        records_a, records_b: ``{seed: FrameRecords}`` of the two models, on the same frames.
        metric: ``'MR-2'``, ``'MR-4'`` or ``'AP'``.
        n_boot: number of resamples.
        conf: confidence level.
        seed: seed of the resampling (deterministic).
        block: frames per resampling unit (see :func:`resample_counts`).

    Raises:
        ValueError: different seed sets (names them), records on different frames or settings.
    """
    check_conf(conf)
    seeds = check_records({'records_a': records_a, 'records_b': records_b})
    counts = resample_counts(records_a[seeds[0]].frames, n_boot, seed, block)
    diff = np.zeros(n_boot)
    full = 0.
    for s in seeds:
        diff += records_a[s].values(metric, counts) - records_b[s].values(metric, counts)
        full += records_a[s].value(metric) - records_b[s].value(metric)
    return percentile_interval(full / len(seeds), diff / len(seeds), conf,
                               f'{metric} undefined (no non-ignore gt)')
