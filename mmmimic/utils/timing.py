# Copyright (c) mmmimic contributors. All rights reserved.
"""The one latency helper of mmmimic's speed tools and ``benchmarks/``, over
``torch.utils.benchmark``.

:func:`time_callable` times one callable (``Timer.blocked_autorange``);
:func:`time_round_robin` times several callables in turns, one block of each per round, so a
load spike on a shared machine hits all of them alike and the ratios between them stay meaningful
when absolute times are noisy. Speed is reported as ratios inside one run; absolute times depend
on the machine.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch
from torch.utils.benchmark import Measurement, Timer
from torch.utils.benchmark.utils.common import set_torch_threads


@dataclass
class Timing:
    """Per-call times (ms) of one callable: one value per timed block.

    Attributes:
        label: what was timed.
        times_ms: seconds per call of each timed block, in ms (a block runs the callable
            ``number_per_run`` times, chosen by ``blocked_autorange``).
        measurement: the merged ``torch.utils.benchmark.Measurement``.
    """
    label: str
    times_ms: List[float]
    measurement: Measurement

    @property
    def median_ms(self) -> float:
        """Median time per call (ms)."""
        return self.measurement.median * 1e3

    @property
    def iqr_ms(self) -> float:
        """Interquartile range of the per-call times (ms)."""
        return self.measurement.iqr * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)


def _timer(fn: Callable[[], object], label: str, num_threads: Optional[int]) -> Timer:
    return Timer(stmt='fn()', globals={'fn': fn}, label=label,
                 num_threads=num_threads or torch.get_num_threads())


def _timing(label: str, measurements: Sequence[Measurement]) -> Timing:
    merged, = Measurement.merge(measurements)
    return Timing(label=label, times_ms=[t * 1e3 for t in merged.times], measurement=merged)


def time_callable(fn: Callable[[], object], *, min_run_time: float = 0.2,
                  num_threads: Optional[int] = None, label: str = '') -> Timing:
    """Time ``fn()`` with ``torch.utils.benchmark.Timer(...).blocked_autorange``.

    Args:
        fn: the callable, called without arguments (a model call, an onnxruntime session's
            ``run`` bound in a lambda...). Synchronise inside it when it runs on an accelerator.
        min_run_time: seconds of timed calls at least (``blocked_autorange``'s; its block-size
            estimate before them also warms ``fn`` up).
        num_threads: torch CPU threads while timing (default: the current count).
        label: the name kept in the result.
    """
    measurement = _timer(fn, label, num_threads).blocked_autorange(min_run_time=min_run_time)
    return _timing(label, [measurement])


def time_round_robin(fns: Sequence[Callable[[], object]], *, rounds: int, warmup: int = 0,
                     min_run_time: float = 0.0, num_threads: Optional[int] = None,
                     labels: Optional[Sequence[str]] = None) -> List[Timing]:
    """Time several callables in turns: ``rounds`` rounds, each one ``blocked_autorange`` of
    every callable, after ``warmup`` untimed rounds of one call each.

    Args:
        fns: the callables (called without arguments).
        rounds: timed rounds (at least 1).
        warmup: untimed rounds before them.
        min_run_time: seconds of timed calls per callable and round. 0 (default): one block
            of one call per round, so ``times_ms[i]`` is round ``i`` for every callable (per-round
            ratios); each callable is then called twice per round, once by ``blocked_autorange``
            to size the block and once timed.
        num_threads: torch CPU threads while timing (default: the current count).
        labels: one name per callable (default: its index).

    Returns:
        One :class:`Timing` per callable, in the order of ``fns``.
    """
    if rounds < 1:
        raise ValueError(f'time_round_robin: rounds must be at least 1, got {rounds}')
    labels = list(labels) if labels is not None else [str(i) for i in range(len(fns))]
    if len(labels) != len(fns):
        raise ValueError(f'time_round_robin: {len(labels)} labels for {len(fns)} callables')
    timers = [_timer(fn, label, num_threads) for fn, label in zip(fns, labels)]
    with set_torch_threads(num_threads or torch.get_num_threads()):
        for _ in range(warmup):
            for fn in fns:
                fn()
    measurements: List[List[Measurement]] = [[] for _ in fns]
    for _ in range(rounds):
        for timer, out in zip(timers, measurements):
            out.append(timer.blocked_autorange(min_run_time=min_run_time))
    return [_timing(label, ms) for label, ms in zip(labels, measurements)]
