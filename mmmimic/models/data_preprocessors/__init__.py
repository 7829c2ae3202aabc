from .preprocessor_cfg import input_scale_of, plain_preprocessor, preprocessor_type
from .scaled_input import ScaledInputDataPreprocessor

__all__ = [
    'ScaledInputDataPreprocessor', 'input_scale_of', 'plain_preprocessor', 'preprocessor_type'
]
