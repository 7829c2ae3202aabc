"""mmmimic.utils.timing: the latency helper over torch.utils.benchmark (structure and ratios,
never wall time)."""
import time

import pytest
import torch

from mmmimic.utils import Timing, time_callable, time_round_robin


def _sleeper(seconds, calls):
    def fn():
        calls.append(torch.get_num_threads())
        time.sleep(seconds)
    return fn


def test_round_robin_ratio_and_structure():
    calls_a, calls_b = [], []
    short, long = _sleeper(0.002, calls_a), _sleeper(0.008, calls_b)
    threads = torch.get_num_threads()
    out = time_round_robin([short, long], rounds=3, warmup=2, num_threads=1,
                           labels=['short', 'long'])
    assert [t.label for t in out] == ['short', 'long']
    assert all(isinstance(t, Timing) for t in out)
    # min_run_time 0: one block of one call per round (times_ms[i] is round i), after the
    # warm-up rounds
    assert all(len(t.times_ms) == 3 for t in out)
    assert len(calls_a) >= 2 + 3 and len(calls_b) >= 2 + 3
    # the thread count holds while timing (warm-up included) and is restored after
    assert set(calls_a) == set(calls_b) == {1}
    assert torch.get_num_threads() == threads
    # a callable four times as slow is measured as clearly slower (loose ratio)
    ratio = out[1].median_ms / out[0].median_ms
    assert 2 < ratio < 8, ratio
    for t in out:
        assert t.min_ms <= t.median_ms <= t.max_ms and t.iqr_ms >= 0


def test_time_callable():
    calls = []
    t = time_callable(_sleeper(0.001, calls), min_run_time=0.02, label='x')
    assert t.label == 'x' and len(t.times_ms) >= 1 and calls
    assert t.median_ms > 0


def test_round_robin_refuses_bad_arguments():
    with pytest.raises(ValueError, match='rounds must be at least 1'):
        time_round_robin([lambda: None], rounds=0)
    with pytest.raises(ValueError, match='2 labels for 1 callables'):
        time_round_robin([lambda: None], rounds=1, labels=['a', 'b'])
