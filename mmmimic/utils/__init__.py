from .checks import (check_checkpoint_matches_model, check_config_path,  # noqa: F401
                     check_fresh_work_dir)
from .dist import setup_cpu_distributed  # noqa: F401
from .env import check_mmcv_ops  # noqa: F401
