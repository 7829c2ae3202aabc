from .rng_state_hook import RNGStateHook  # noqa: F401
from .teacher_check_hook import TeacherCheckHook  # noqa: F401
