"""Tiny on-disk datasets for tests and smoke runs, in the real file formats.

Nothing here downloads anything: images are drawn with numpy/OpenCV (pedestrian-like upright
rectangles with a head blob on a textured background), written as JPEG, and annotated in
COCO json, so mmdet's ``CocoDataset`` and ``CocoMetric`` read them unchanged.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np


def _draw_person(img: np.ndarray, x: int, y: int, w: int, h: int, rng) -> None:
    color = tuple(int(c) for c in rng.integers(0, 90, size=3))
    cv2.rectangle(img, (x, y + h // 5), (x + w - 1, y + h - 1), color, -1)
    cv2.circle(img, (x + w // 2, y + h // 10), max(2, w // 3), color, -1)


def make_tiny_coco(root: str,
                   num_images: int = 8,
                   img_size: Tuple[int, int] = (96, 128),
                   max_objects: int = 3,
                   seed: int = 0,
                   split: str = 'train',
                   classes: Sequence[str] = ('person', )) -> Dict[str, str]:
    """Write ``num_images`` synthetic images plus a COCO annotation file under ``root``.

    Args:
        root: output folder (created). Images go to ``root/<split>/``, annotations to
            ``root/annotations/<split>.json``.
        num_images: number of images; each has 1..``max_objects`` upright boxes.
        img_size: (height, width) of every image.
        seed: RNG seed; the same arguments always give byte-identical files.
        split: name of the split (folder and json name).
        classes: category names (objects are drawn for the first class only).

    Returns:
        dict with ``data_root``, ``ann_file`` (relative to data_root) and ``img_prefix``
        (relative), ready for mmdet's ``CocoDataset(data_root=..., ann_file=...,
        data_prefix=dict(img=...))``.
    """
    rng = np.random.default_rng(seed)
    h_img, w_img = img_size
    img_dir = osp.join(root, split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        noise = rng.integers(120, 200, size=(h_img // 8 + 1, w_img // 8 + 1, 3), dtype=np.uint8)
        img = cv2.resize(noise, (w_img, h_img), interpolation=cv2.INTER_LINEAR)
        n_obj = int(rng.integers(1, max_objects + 1))
        for _ in range(n_obj):
            h = int(rng.integers(h_img // 3, int(h_img * 0.8)))
            w = max(4, int(h * 0.41))
            x = int(rng.integers(0, w_img - w))
            y = int(rng.integers(0, h_img - h))
            _draw_person(img, x, y, w, h, rng)
            annotations.append(
                dict(id=len(annotations) + 1, image_id=i + 1, category_id=1,
                     bbox=[x, y, w, h], area=float(w * h), iscrowd=0))
        name = f'{split}_{i:04d}.jpg'
        cv2.imwrite(osp.join(img_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=i + 1, file_name=name, height=h_img, width=w_img))
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=k + 1, name=c) for k, c in enumerate(classes)])
    ann_file = osp.join('annotations', f'{split}.json')
    with open(osp.join(root, ann_file), 'w') as f:
        json.dump(coco, f)
    return dict(data_root=root, ann_file=ann_file, img_prefix=f'{split}/')


def tiny_coco_dataloader_cfg(data: Dict[str, str],
                             test_mode: bool = False,
                             batch_size: int = 2,
                             img_scale: Tuple[int, int] = (128, 96),
                             classes: Sequence[str] = ('person', ),
                             num_workers: int = 0,
                             pipeline: Optional[list] = None) -> dict:
    """A dataloader config for a :func:`make_tiny_coco` split (no resize beyond ``img_scale``)."""
    if pipeline is None:
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
        ]
        if not test_mode:
            pipeline.append(dict(type='RandomFlip', prob=0.5))
        pipeline.append(
            dict(type='PackDetInputs',
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                            'flip', 'flip_direction')))
    return dict(
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=False,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=not test_mode),
        dataset=dict(
            type='CocoDataset',
            data_root=data['data_root'],
            ann_file=data['ann_file'],
            data_prefix=dict(img=data['img_prefix']),
            metainfo=dict(classes=tuple(classes)),
            filter_cfg=None if test_mode else dict(filter_empty_gt=True, min_size=1),
            test_mode=test_mode,
            pipeline=pipeline))
