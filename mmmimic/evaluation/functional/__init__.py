from .caltech_eval import (ASPECT_RATIO, CALTECH_BORDER, CALTECH_SETTINGS, KEPT_LABELS,
                           ap_from_counts, average_precision, compute_roc, evaluate_caltech,
                           filter_detections, filter_gt, get_setting, log_average,
                           log_average_miss_rate, match_caltech, match_detections, miss_rates_at,
                           reference_points, standardize_aspect)
from .caltech_plot import plot_mr_fppi
from .caltech_records import (FrameRecords, Interval, bootstrap_paired, check_records,
                              load_frame_records, resample_counts)
from .caltech_results import (format_mr_table, load_detections, load_ground_truth,
                              score_result_dirs)
from .proposal_recall import proposal_recall

__all__ = [
    'ASPECT_RATIO', 'CALTECH_BORDER', 'CALTECH_SETTINGS', 'KEPT_LABELS', 'ap_from_counts',
    'average_precision', 'match_caltech', 'compute_roc',
    'evaluate_caltech', 'filter_detections', 'filter_gt', 'get_setting', 'log_average',
    'log_average_miss_rate', 'match_detections', 'miss_rates_at', 'reference_points',
    'standardize_aspect', 'plot_mr_fppi', 'proposal_recall', 'format_mr_table', 'load_detections',
    'load_ground_truth', 'score_result_dirs', 'FrameRecords', 'Interval', 'bootstrap_paired',
    'check_records', 'load_frame_records', 'resample_counts'
]
