from .checkpoint import (STUDENT_PREFIX, UNCHECKED_WEIGHTS_ENV, check_weight_values,  # noqa: F401
                         extract_state_dict, load_state_dict,
                         read_checkpoint)
from .checks import (check_checkpoint_matches_model, check_config_dump,  # noqa: F401
                     check_config_path, check_fresh_work_dir, check_output_path,
                     config_dump_path, find_resume_checkpoint, restore_on_failure)
from .dist import setup_cpu_distributed  # noqa: F401
from .cli import (DEBUG_ENV, add_common_args, apply_common_args, parse_shape,  # noqa: F401
                  run_main)
