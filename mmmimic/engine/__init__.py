from .checkpoint_compat import (allow_mmengine_checkpoint_types,  # noqa: F401
                                MMENGINE_CHECKPOINT_SAFE_GLOBALS)
from .hooks import *  # noqa: F401,F403
