from .. import LIGHT_IMPORT
from . import caltech_converter, caltech_io
from .caltech_io import FRAME_PRESETS, parse_img_id

__all__ = ['caltech_converter', 'caltech_io', 'FRAME_PRESETS', 'parse_img_id']

if not LIGHT_IMPORT:  # the mmdet dataset classes (MMMIMIC_LIGHT_IMPORT=1: numpy-only I/O)
    from .caltech import CaltechPedestrianDataset  # noqa: F401
    from .transforms import StrideAlignedRandomCrop  # noqa: F401
    __all__ += ['CaltechPedestrianDataset', 'StrideAlignedRandomCrop']
