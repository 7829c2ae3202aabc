from .inception import INCEPTION_BLOCKS, STAGE_NAMES, Inception, InceptionBlock

__all__ = ['Inception', 'InceptionBlock', 'INCEPTION_BLOCKS', 'STAGE_NAMES']
