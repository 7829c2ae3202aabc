"""High-level entry points for scripts and notebooks."""
from .student_export import extract_student, student_config

__all__ = ['extract_student', 'student_config']
