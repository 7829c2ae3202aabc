from .stride_aligned_crop import StrideAlignedRandomCrop

__all__ = ['StrideAlignedRandomCrop']
