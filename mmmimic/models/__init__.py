from ..compat import install as _install_compat

_install_compat()  # the checkpoint/resume patches, before anything here loads a file

from .backbones import *  # noqa: F401,F403,E402
from .connectors import *  # noqa: F401,F403,E402
from .data_preprocessors import *  # noqa: F401,F403,E402
from .dense_heads import *  # noqa: F401,F403,E402
from .detectors import *  # noqa: F401,F403,E402
from .distillers import *  # noqa: F401,F403,E402
from .layers import *  # noqa: F401,F403,E402
from .losses import *  # noqa: F401,F403,E402
from .necks import *  # noqa: F401,F403,E402
from .roi_heads import *  # noqa: F401,F403,E402
