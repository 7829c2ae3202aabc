from ..compat import install as _install_compat

_install_compat()  # the checkpoint/resume patches, before anything here loads a file

from .hooks import *  # noqa: F401,F403,E402
