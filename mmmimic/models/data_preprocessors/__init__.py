from .scaled_input import ScaledInputDataPreprocessor

__all__ = ['ScaledInputDataPreprocessor']
