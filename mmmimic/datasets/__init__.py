from . import caltech_io
from .caltech import FRAME_PRESETS, CaltechPedestrianDataset, parse_img_id

__all__ = ['caltech_io', 'CaltechPedestrianDataset', 'FRAME_PRESETS', 'parse_img_id']
