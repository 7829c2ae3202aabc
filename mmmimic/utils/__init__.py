"""mmmimic's utilities. Names are imported on first use (PEP 562), so the torch-free helpers
(:mod:`.progress_bar`, :mod:`.tables`) import neither torch nor mmdet."""
import importlib
from typing import Any

_NAMES = {
    'checkpoint': ('STUDENT_PREFIX', 'UNCHECKED_WEIGHTS_ENV', 'check_weight_values',
                   'extract_state_dict', 'load_state_dict', 'read_checkpoint'),
    'checks': ('check_checkpoint_matches_model', 'check_config_dump', 'check_config_path',
               'check_fresh_work_dir', 'check_output_path', 'config_dump_path',
               'find_resume_checkpoint', 'restore_on_failure'),
    'dist': ('setup_cpu_distributed', ),
    'cli': ('DEBUG_ENV', 'add_common_args', 'apply_common_args', 'parse_shape', 'run_main'),
    'progress_bar': ('PROGRESS_ENV', 'progress'),
    'tables': ('markdown_table', ),
    'timing': ('Timing', 'time_callable', 'time_round_robin'),
}
_MODULE_OF = {name: mod for mod, names in _NAMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f'{__name__}.{_MODULE_OF[name]}'), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
