"""What the teacher cache serves vs the live teacher, near crop and padding borders.

    python -m benchmarks.teacher_cache_exactness [--teacher CONFIG] [--out JSON]

1. Crops: the cache serves a stride-aligned crop as the slice of the whole image's map; the live
   teacher runs on the crop alone (zero padding where the image continues). Both are compared per
   ring of cells at distance d from the crop border.
2. Batch padding: an image padded to a larger batch partner's size (live) vs the same image alone,
   padded to ``pad_size_divisor`` only (what a cache entry holds), per ring from its right/bottom
   border. Equal-size batches (Caltech, vtest) are identical by construction (tested).
The teacher has random weights (initialised as its config says; BN statistics of a random
network): the receptive-field effect does not need trained weights, its size may differ.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from mmengine.config import Config

import mmmimic  # noqa: F401  (registers the modules)
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules


def ring_errors(a, b, dist, max_d):
    """Relative L2 error ||a - b|| / ||b|| over the cells at each distance 0..max_d (and the
    rest) from the border, plus the overall cosine."""
    out = {}
    for d in range(max_d + 1):
        mask = dist == d
        if mask.any():
            out[str(d)] = ((a - b)[..., mask].norm() / b[..., mask].norm()).item()
    mask = dist > max_d
    if mask.any():
        out[f'>{max_d}'] = ((a - b)[..., mask].norm() / b[..., mask].norm()).item()
    out['cosine'] = F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher', default='configs/inception/rpn_inception_1xb2-40k_caltech.py')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    register_all_modules()
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(args.teacher).model)
    teacher.init_weights()
    teacher.eval()
    stride = 16
    g = torch.Generator().manual_seed(0)
    image = F.interpolate(torch.randn(1, 3, 60, 80, generator=g), size=(480, 640),
                          mode='bilinear', align_corners=False)  # smooth, image-like
    report = {}
    with torch.no_grad():
        whole = teacher.extract_feat(image)[-1]
        x, y, ch, cw = 128, 80, 320, 384  # a StrideAlignedRandomCrop draw at vtest's crop size
        crop = teacher.extract_feat(image[..., y:y + ch, x:x + cw])[-1]
        served = whole[..., y // stride:(y + ch) // stride, x // stride:(x + cw) // stride]
        rows = torch.arange(served.shape[-2])
        cols = torch.arange(served.shape[-1])
        dist = torch.minimum(
            torch.minimum(rows[:, None], rows.flip(0)[:, None]),
            torch.minimum(cols[None], cols.flip(0)[None]))
        report['crop 320x384 of 480x640: live crop vs served slice'] = ring_errors(
            served, crop, dist, 6)
        small = image[..., :320, :384]
        alone = teacher.extract_feat(small)[-1]  # 320x384: already a multiple of 32
        batch = torch.zeros(1, 3, 480, 640)
        batch[..., :320, :384] = small
        in_batch = teacher.extract_feat(batch)[-1][..., :alone.shape[-2], :alone.shape[-1]]
        rows = torch.arange(alone.shape[-2]).flip(0)
        cols = torch.arange(alone.shape[-1]).flip(0)
        dist = torch.minimum(rows[:, None], cols[None])  # from the right/bottom border
        report['320x384 image in a 480x640 batch vs alone'] = ring_errors(
            alone, in_batch, dist, 6)
    for name, errors in report.items():
        print(name)
        print('  ' + ', '.join(f'd={k}: {v:.3g}' if k != 'cosine' else f'cosine {v:.5f}'
                               for k, v in errors.items()))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
