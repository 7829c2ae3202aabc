from .config import (CONFIG_ROOT, config_path, load_tiny_config,  # noqa: F401
                     tiny_coco_overrides)
from .data import make_tiny_coco, tiny_coco_dataloader_cfg  # noqa: F401
from .tools import checkout_env, run_tool  # noqa: F401
