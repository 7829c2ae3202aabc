"""High-level entry points for scripts and notebooks."""
from .mimic_wrap import MIMIC_LOSSES, choose_connector, wrap_with_teacher
from .student_export import extract_student, student_config

__all__ = [
    'wrap_with_teacher', 'choose_connector', 'MIMIC_LOSSES',
    'extract_student', 'student_config'
]
