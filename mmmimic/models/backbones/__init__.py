from mmmimic.utils.mmpretrain_compat import install_import_hook
from .inception import INCEPTION_BLOCKS, STAGE_NAMES, Inception, InceptionBlock

# Teachers name ``type='mmpretrain.VGG'``; make that import work where torchvision is missing
# (a no-op when it is installed). See mmmimic/utils/mmpretrain_compat.py.
install_import_hook()

__all__ = ['Inception', 'InceptionBlock', 'INCEPTION_BLOCKS', 'STAGE_NAMES']
