"""The built-in vtest.avi benchmark (``tools/mimic_demo.py``, ``benchmarks/vtest_mimic_sweep.py``,
``benchmarks/vtest_teacher_sweep.py``): its models and the training config each run uses."""
from .vtest import (BY_NAME, COMPARISONS, MODELS, PRESETS, SPLIT_LISTS, TEACHER_CANDIDATES,
                    TEST_SET, VAL_EVALUATOR, VAL_METRIC, VAL_SET, BenchmarkModel, models_of,
                    speed_config, speed_configs, student_init_state, vtest_train_config)
from .stats import (FrameRecords, GapClosed, Interval, bootstrap_paired, gap_closed,
                    load_frame_records, paired_difference, resample_counts, t_interval)

__all__ = [
    'BenchmarkModel', 'BY_NAME', 'COMPARISONS', 'MODELS', 'PRESETS', 'SPLIT_LISTS',
    'TEACHER_CANDIDATES', 'TEST_SET', 'VAL_EVALUATOR', 'VAL_METRIC', 'VAL_SET', 'models_of',
    'speed_config', 'speed_configs', 'student_init_state', 'vtest_train_config', 'FrameRecords',
    'GapClosed', 'Interval', 'bootstrap_paired', 'gap_closed', 'load_frame_records',
    'paired_difference', 'resample_counts', 't_interval'
]
