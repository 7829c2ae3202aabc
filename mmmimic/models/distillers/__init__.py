from .feature_mimic_distiller import (DEFAULT_MIMIC_CFG, FeatureMimicDistiller,
                                      load_teacher_checkpoint)

__all__ = ['FeatureMimicDistiller', 'DEFAULT_MIMIC_CFG', 'load_teacher_checkpoint']
