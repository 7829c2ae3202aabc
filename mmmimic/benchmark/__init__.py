"""The built-in vtest.avi benchmark (``tools/mimic_demo.py``, ``benchmarks/vtest_mimic_sweep.py``):
its models and the training config each run uses."""
from .vtest import (MODELS, PRESETS, TEST_SET, BenchmarkModel, speed_config, speed_configs,
                    vtest_train_config)
from .stats import (FrameRecords, GapClosed, Interval, bootstrap_paired, gap_closed,
                    load_frame_records, paired_difference, resample_counts, t_interval)

__all__ = [
    'BenchmarkModel', 'MODELS', 'PRESETS', 'TEST_SET', 'speed_config', 'speed_configs',
    'vtest_train_config', 'FrameRecords', 'GapClosed', 'Interval', 'bootstrap_paired',
    'gap_closed', 'load_frame_records', 'paired_difference', 'resample_counts', 't_interval'
]
