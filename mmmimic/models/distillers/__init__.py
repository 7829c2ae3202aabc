from .cross_scale import resize_batch
from .feature_mimic_distiller import (DEFAULT_MIMIC_CFG, FeatureMimicDistiller,
                                      load_teacher_checkpoint, measure_feature_map,
                                      merge_mimic_cfg)
from .stage2_init import MimicStudentInit, load_student_state_dict

__all__ = [
    'FeatureMimicDistiller', 'DEFAULT_MIMIC_CFG', 'measure_feature_map', 'merge_mimic_cfg',
    'load_teacher_checkpoint', 'resize_batch', 'MimicStudentInit', 'load_student_state_dict'
]
