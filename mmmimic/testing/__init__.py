from .config import load_tiny_config, tiny_coco_overrides  # noqa: F401
from .data import make_tiny_coco, tiny_coco_dataloader_cfg  # noqa: F401
from .tools import run_tool  # noqa: F401
