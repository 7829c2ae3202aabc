"""Generic statistics of the study's paired seed comparison: the t-interval over seeds and the
share of the scratch-to-teacher gap that mimicking closes
(``projects/vtest_mimic/docs/statistics.md``).

The t-intervals come from :mod:`scipy.stats` (``ttest_1samp`` / ``ttest_rel`` and their
``confidence_interval``); the frame bootstrap is Caltech evaluation code
(:mod:`mmmimic.evaluation.functional.caltech_records`).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np
from scipy import stats as sps

from mmmimic.evaluation.functional.caltech_records import (FrameRecords, Interval, check_conf,
                                                           check_records, common_seeds,
                                                           percentile_interval, resample_counts)

__all__ = ['GapClosed', 'gap_closed', 'paired_difference', 't_interval']


def _checked(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) == 0:
        raise ValueError('t_interval: no values')
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
        raise ValueError(f't_interval: value [{bad[0]}] is {v[bad[0]]}; all values must be '
                         f'finite')
    return v


def _from_ttest(v: np.ndarray, ttest: Callable[[], object], conf: float) -> Interval:
    """The :class:`Interval` of the scipy t-test ``ttest()`` over the values (or differences)
    ``v``; zero spread gives the zero-width interval at the mean (scipy is not called: its
    interval is 0/0 there)."""
    mean = float(v.mean())
    sd = float(v.std(ddof=1))
    if sd == 0:
        return Interval(mean, mean, mean, len(v), 't', conf, sd)
    ci = ttest().confidence_interval(confidence_level=conf)
    return Interval(mean, float(ci.low), float(ci.high), len(v), 't', conf, sd)


def t_interval(values: Sequence[float], conf: float = 0.95) -> Interval:
    """Mean and Student-t interval ``mean +- t_{(1+conf)/2, n-1} * sd / sqrt(n)``
    (``scipy.stats.ttest_1samp(values, 0).confidence_interval``).

    Args:
        values: one value per seed (n >= 1).
        conf: confidence level.

    Returns:
        the :class:`Interval`; with one value the bounds are NaN and ``note`` says why (a single
        seed measures no spread: never a zero-width interval).

    Raises:
        ValueError: no value, a NaN/inf value (names its position), or ``conf`` outside (0, 1).
    """
    check_conf(conf)
    v = _checked(values)
    if len(v) == 1:
        return Interval(float(v[0]), math.nan, math.nan, 1, 't', conf, note='one seed')
    return _from_ttest(v, lambda: sps.ttest_1samp(v, 0.0), conf)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float],
                      conf: float = 0.95) -> Interval:
    """Mean of ``a[seed] - b[seed]`` and its t-interval over seeds (a paired comparison:
    ``scipy.stats.ttest_rel(a, b).confidence_interval``).

    Args:
        a, b: ``{seed: metric value}`` of two models trained on the same seeds.
        conf: confidence level.

    Raises:
        ValueError: the seed sets differ (names the seeds in only one of them), a NaN/inf value,
            or ``conf`` outside (0, 1).
    """
    seeds = common_seeds({'a': a, 'b': b})
    check_conf(conf)
    va = np.array([a[s] for s in seeds], dtype=np.float64)
    vb = np.array([b[s] for s in seeds], dtype=np.float64)
    diff = _checked(va - vb)
    if len(diff) == 1:
        return Interval(float(diff[0]), math.nan, math.nan, 1, 't', conf, note='one seed')
    return _from_ttest(diff, lambda: sps.ttest_rel(va, vb), conf)


@dataclass(frozen=True)
class GapClosed:
    """Share (%) of the scratch-to-teacher gap closed by mimicking, ``100 * (scratch - mimic) /
    (scratch - teacher)`` in a lower-is-better metric.

    Attributes:
        estimate: the ratio of the means over seeds, on all frames (None: see ``reason``).
        seeds: t-interval over seeds of the per-seed ratio (the teacher is one fixed model).
        frames: frame-bootstrap percentile interval of the ratio of the means.
        gap: mean scratch - teacher (metric points).
        reason: why ``estimate`` (or an interval) is missing, else ''.
    """

    estimate: Optional[float]
    seeds: Optional[Interval]
    frames: Optional[Interval]
    gap: float
    reason: str = ''

    def as_dict(self) -> Dict:
        """A JSON-ready dict (intervals as :meth:`Interval.as_dict`)."""
        return dict(estimate=self.estimate, gap=self.gap, reason=self.reason,
                    seeds=self.seeds.as_dict() if self.seeds is not None else None,
                    frames=self.frames.as_dict() if self.frames is not None else None)

    def format(self, digits: int = 0) -> str:
        """``62 % (seeds [35, 89], frames [40, 85])`` or the reason."""
        if self.estimate is None:
            return f'n/a ({self.reason})'
        parts = []
        for name, iv in (('seeds', self.seeds), ('frames', self.frames)):
            if iv is not None:
                parts.append(f'{name} [{iv.lo:.{digits}f}, {iv.hi:.{digits}f}]' if iv.ok else
                             f'{name}: {iv.note}')
        return f'{self.estimate:.{digits}f} % ({", ".join(parts)})'


def gap_closed(scratch: Mapping[int, FrameRecords],
               mimic: Mapping[int, FrameRecords],
               teacher: FrameRecords,
               metric: str = 'MR-2',
               conf: float = 0.95,
               n_boot: int = 1000,
               seed: int = 0,
               block: int = 1,
               min_gap: float = 1.0) -> GapClosed:
    """How much of the scratch student's distance to the teacher mimicking recovers.

    Args:
        scratch, mimic: ``{seed: FrameRecords}`` of the student trained alone and with mimic.
        teacher: the teacher's records (one model, shared by all seeds), same frames.
        metric: a lower-is-better metric, ``'MR-2'`` or ``'MR-4'``.
        conf, n_boot, seed, block: as :func:`bootstrap_paired` (same resamples for the same
            ``seed``, ``n_boot`` and ``block``).
        min_gap: the smallest gap (metric points) for which the share is computed; below it,
            the share divides by about zero and is not reported.

    Returns:
        a :class:`GapClosed`. ``estimate`` is None when the mean gap is below ``min_gap`` (the
        teacher is not better than the scratch student); ``seeds`` is None when some seed's gap
        is below ``min_gap`` and ``frames`` has no bounds when some resample's gap is: ``reason``
        says which.
    """
    if metric not in ('MR-2', 'MR-4'):
        raise ValueError(f'gap_closed needs a lower-is-better metric (MR-2, MR-4), got {metric!r}')
    check_conf(conf)
    seeds = check_records({'scratch': scratch, 'mimic': mimic, 'teacher': {
        s: teacher for s in scratch}})
    t_val = teacher.value(metric)
    sc = np.array([scratch[s].value(metric) for s in seeds])
    mi = np.array([mimic[s].value(metric) for s in seeds])
    gap = float(sc.mean() - t_val)
    if not gap >= min_gap:
        return GapClosed(None, None, None, gap,
                         f'the teacher ({t_val:.2f}) is not better than the scratch student '
                         f'({sc.mean():.2f}) by min_gap={min_gap} {metric} points')
    estimate = 100 * float(sc.mean() - mi.mean()) / gap
    reasons = []
    per_seed_gap = sc - t_val
    if np.all(per_seed_gap >= min_gap):
        seeds_iv = t_interval(100 * (sc - mi) / per_seed_gap, conf)
    else:
        seeds_iv = None
        small = [s for s, g in zip(seeds, per_seed_gap) if not g >= min_gap]
        reasons.append(f'no per-seed interval: the gap is below {min_gap} for seeds {small}')
    counts = resample_counts(teacher.frames, n_boot, seed, block)
    t_boot = teacher.values(metric, counts)
    sc_boot = np.mean([scratch[s].values(metric, counts) for s in seeds], axis=0)
    mi_boot = np.mean([mimic[s].values(metric, counts) for s in seeds], axis=0)
    gap_boot = sc_boot - t_boot
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.where(gap_boot >= min_gap, 100 * (sc_boot - mi_boot) / gap_boot, np.nan)
    frames_iv = percentile_interval(estimate, ratio, conf,
                                    f'gap below min_gap={min_gap} or {metric} undefined')
    if not frames_iv.ok:
        reasons.append(f'no frame interval: {frames_iv.note}')
    return GapClosed(estimate, seeds_iv, frames_iv, gap, '; '.join(reasons))
