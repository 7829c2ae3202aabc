"""What one teacher-cache entry of a pyramid weighs: every mimicked level of an FPN teacher.

    python -m benchmarks.teacher_cache_pyramid_size [--teacher CONFIG] [--size H W]
        [--out benchmarks/results/teacher_cache_pyramid/size.json]

The teacher (default: mmdet's Faster R-CNN R50-FPN, random weights: shapes only) is measured as
the cache measures it (:class:`~mmmimic.teacher_cache.TeacherMapGeometry`: one forward on zeros
of the input padded to the data preprocessor's ``pad_size_divisor``), for all five FPN levels
(what ``mimic_levels='auto'`` pairs when the student has the same strides). Reported per level:
its shape and share of the entry's bytes; per entry: the maps' bytes in float16 / float32 (what
the fill tool's estimate counts), the safetensors header of a real encoded entry (what the
estimate leaves to the 5% margin), and the size of 1000 images in both flip states.
"""
import argparse
import json
import math
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.hub import get_config

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmmimic.models.distillers.pyramid import measure_feature_maps
from mmmimic.teacher_cache import TeacherMapGeometry, encode_entry
from mmmimic.teacher_cache.codec import HEADER_LEN

DEFAULT_TEACHER = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
KEY = 'data/coco/train2017/000000000009.jpg|horizontal|800x1333'


def measure(teacher_cfg: str, size) -> dict:
    register_all_modules()
    cfg = (get_config(teacher_cfg) if teacher_cfg.startswith('mmdet::') else
           Config.fromfile(teacher_cfg)).model
    cfg.backbone.init_cfg = None  # shapes only: no pretrained download
    teacher = MODELS.build(cfg).eval()
    divisor = cfg.data_preprocessor.get('pad_size_divisor', 1)
    levels = [(j, int(stride)) for j, (_, stride) in enumerate(measure_feature_maps(teacher))]
    shapes = TeacherMapGeometry(teacher, -1, divisor, levels).entry_shape(*size)
    cells = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(cells.values())
    maps = {name: torch.zeros(shape, dtype=torch.float16) for name, shape in shapes.items()}
    value = encode_entry(maps, KEY, 'e' * 64)
    single = encode_entry(maps['level0'], KEY, 'e' * 64)
    mib = 2**20
    return dict(
        teacher=teacher_cfg, input=list(size), pad_size_divisor=divisor,
        strides={f'level{j}': s for j, s in levels},
        levels={name: dict(shape=list(shape), share=round(cells[name] / total, 4))
                for name, shape in shapes.items()},
        entry_maps_mib=dict(float16=total * 2 / mib, float32=total * 4 / mib),
        header_bytes=dict(pyramid=HEADER_LEN.size + HEADER_LEN.unpack_from(value)[0],
                          single_map=HEADER_LEN.size + HEADER_LEN.unpack_from(single)[0]),
        entry_value_bytes_float16=len(value),
        gib_per_1000_images_both_flips=dict(float16=2000 * total * 2 / 2**30,
                                            float32=2000 * total * 4 / 2**30),
        finest_level_only_gib_per_1000_images_both_flips_float16=2000 * cells['level0'] * 2 /
        2**30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher', default=DEFAULT_TEACHER)
    parser.add_argument('--size', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument('--out', default='benchmarks/results/teacher_cache_pyramid/size.json')
    args = parser.parse_args()
    result = measure(args.teacher, tuple(args.size))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
