from .data import make_tiny_coco, tiny_coco_dataloader_cfg  # noqa: F401
