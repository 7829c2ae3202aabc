"""ONNX vs PyTorch detections of mmdet's own FPN and one-stage detectors (issue 27, item 7).

    python -m benchmarks.onnx_mmdet_equivalence [--out-dir benchmarks/results/onnx_mmdet]

For each tiny mmdet config of :data:`mmmimic.testing.mmdet_tiny.MMDET_TINY` with an ONNX route
(FPN Faster R-CNN, FPN RPN, RetinaNet, ATSS, FCOS: mmdet's configs through ``mmdet::`` with a
ResNet-18 trunk of 16 base channels, a 32-channel FPN, 3 classes, seeded random weights), one
dynamic export is run by onnxruntime (1 thread) on generated pedestrian scenes of four sizes
(two seeds, two frames each, scale factor (0.8, 0.75)) and compared with the detector's
``predict``: detection counts, the largest box and score differences of the paired detections
(:func:`~mmmimic.testing.mmdet_tiny.match_detections`), and the frames where the two ranked two
near-tied detections in the other order (the same detections, paired by position they differ).
Writes ``equivalence.json`` and ``equivalence.md`` to ``--out-dir``.
"""
import argparse
import json
import os
import os.path as osp
import tempfile

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmmimic.deployment import OnnxDetector, export_onnx
from mmmimic.testing import make_tiny_coco
from mmmimic.testing.mmdet_tiny import match_detections, write_mmdet_tiny
from mmmimic.utils.tables import markdown_table

KINDS = ('fpn_faster_rcnn', 'fpn_rpn', 'retinanet', 'atss', 'fcos')
SIZES = ((96, 128), (150, 200), (320, 448), (480, 640))
SCALE_FACTOR = (0.8, 0.75)


def scenes(size, seed):
    """Two generated pedestrian scenes (BGR uint8) of ``size``."""
    with tempfile.TemporaryDirectory() as root:
        info = make_tiny_coco(root, num_images=2, img_size=size, max_objects=4, seed=seed,
                              split='scene')
        folder = osp.join(root, info['img_prefix'])
        return [cv2.imread(osp.join(folder, n)) for n in sorted(os.listdir(folder))]


def preprocess(model, frame):
    h, w = frame.shape[:2]
    meta = dict(img_shape=(h, w), scale_factor=SCALE_FACTOR,
                ori_shape=(round(h / SCALE_FACTOR[1]), round(w / SCALE_FACTOR[0])))
    img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
    return model.data_preprocessor(
        dict(inputs=[img], data_samples=[DetDataSample(metainfo=meta)]), False)


def measure(kind, work_dir):
    init_default_scope('mmdet')
    config = write_mmdet_tiny(kind, work_dir)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model).eval()
    ckpt = osp.join(work_dir, f'{kind}.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = osp.join(work_dir, f'{kind}.onnx')
    export_onnx(config, ckpt, out)
    onnx_model = OnnxDetector(out, device='cpu', num_threads=1)
    row = dict(model=kind, frames=0, detections=0, max_box_diff=0.0, max_score_diff=0.0,
               rank_swaps=0)
    for size in SIZES:
        for seed in (0, 1):
            for frame in scenes(size, seed):
                data = preprocess(model, frame)
                got = onnx_model.predict(data['inputs'], data['data_samples'])[0].pred_instances
                data = preprocess(model, frame)
                with torch.no_grad():
                    ref = model.predict(data['inputs'], data['data_samples'],
                                        rescale=True)[0].pred_instances
                box, score = match_detections(got, ref)
                row['frames'] += 1
                row['detections'] += len(ref)
                row['max_box_diff'] = max(row['max_box_diff'], box)
                row['max_score_diff'] = max(row['max_score_diff'], score)
                row['rank_swaps'] += int((got.bboxes - ref.bboxes).abs().max() >= 1e-3)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='benchmarks/results/onnx_mmdet')
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work_dir:
        rows = [measure(kind, work_dir) for kind in KINDS]
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'equivalence.json'), 'w') as f:
        json.dump(dict(sizes=SIZES, scale_factor=SCALE_FACTOR, rows=rows), f, indent=1)
    table = markdown_table(
        [(r['model'], r['frames'], r['detections'], f'{r["max_box_diff"]:.1e}',
          f'{r["max_score_diff"]:.1e}', r['rank_swaps']) for r in rows],
        ['model (tiny mmdet config)', 'frames', 'detections', 'max box diff (px)',
         'max score diff', 'frames with near-tie rank swaps'])
    text = ('# ONNX vs PyTorch: mmdet FPN and one-stage detectors\n\n'
            '`python -m benchmarks.onnx_mmdet_equivalence`: one dynamic export each, '
            'onnxruntime (1 thread) vs `predict`, generated scenes at '
            f'{", ".join(f"{h}x{w}" for h, w in SIZES)}, scale factor {SCALE_FACTOR}, '
            'seeded random weights. Every frame: the same count, every detection paired with '
            'one of the same label (box within 1e-3 px, score within 1e-4).\n\n' + table + '\n')
    with open(osp.join(args.out_dir, 'equivalence.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
