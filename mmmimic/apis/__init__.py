"""High-level entry points for scripts and notebooks."""
from ..compat import install as _install_compat

_install_compat()  # the checkpoint/resume patches, before anything here loads a file

from .mimic_wrap import MIMIC_LOSSES, choose_connector, wrap_with_teacher  # noqa: E402
from .student_export import extract_student, student_config  # noqa: E402

__all__ = [
    'wrap_with_teacher', 'choose_connector', 'MIMIC_LOSSES',
    'extract_student', 'student_config'
]
