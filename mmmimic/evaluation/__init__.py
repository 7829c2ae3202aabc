from .. import LIGHT_IMPORT
from .functional import *  # noqa: F401,F403

if not LIGHT_IMPORT:  # the mmengine metrics (MMMIMIC_LIGHT_IMPORT=1: the numpy functional core)
    from .metrics import *  # noqa: F401,F403
