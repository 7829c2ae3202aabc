"""Time the Caltech test-set evaluation (Reasonable MR-2 + MR-4) against a loop implementation.

Synthetic data of the size of the Caltech test set: 4024 frames of 640x480, ~7.6k gt boxes
(persons of all heights, some occluded, some ``people``/``person?`` ignore regions) and ~40k
detections (2-3 jittered boxes near most gts, the rest false positives), scores tied in places.

Both implementations get the same raw per-image annotations and detections and run the whole
dbEval pipeline (gt filtering, 0.41 standardisation, detection height filter, matching, curve,
MR-2 and MR-4). The loop version (``mmmimic.testing.caltech_loop``) transcribes the
toolbox's MATLAB loops; the script checks that both give identical numbers and prints the ratio.

Usage::

    python benchmarks/caltech_eval_speed.py [--repeat 5] [--settings Reasonable All]
"""
import argparse
import time

import numpy as np

from mmmimic.evaluation.functional import CALTECH_SETTINGS, evaluate_caltech
from mmmimic.testing.caltech_loop import evaluate_caltech_loop


def make_test_set(num_images: int = 4024, seed: int = 0):
    """Synthetic raw annotations and detections in the Caltech test-set proportions."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for _ in range(num_images):
        k = int(rng.poisson(1.9))
        h = np.exp(rng.uniform(np.log(20), np.log(250), k))
        bb = np.c_[rng.uniform(0, 640 - .41 * h), rng.uniform(0, 480 - h),
                   h * rng.uniform(.3, .55, k), h]
        occluded = rng.random(k) < .3
        vis = np.where(occluded[:, None], bb * [1, 1, 1, 0] + [0, 0, 0, 1] * bb * rng.uniform(
            .2, 1, (k, 1)), 0)
        labels = list(rng.choice(['person'] * 8 + ['people', 'person?'], k))
        gts.append(dict(bboxes=bb, bboxes_vis=vis, labels=labels))
        near = bb[rng.integers(0, k, int(rng.integers(0, 3 * k + 1)))] if k else np.zeros((0, 4))
        near = near + rng.normal(0, 1, near.shape) * near[:, 3:4] * [.05, .05, .05, .05]
        nfp = int(rng.poisson(10 - len(near) if len(near) < 10 else 1))
        fh = np.exp(rng.uniform(np.log(25), np.log(250), nfp))
        fps = np.c_[rng.uniform(0, 600, nfp), rng.uniform(0, 480 - fh), .41 * fh, fh]
        d = np.concatenate([near, fps])
        scores = np.round(rng.random(len(d)), 3)  # ties happen, as with real result files
        scores[:len(near)] = np.minimum(1, scores[:len(near)] + .3)
        dts.append(np.c_[d, scores])
    return gts, dts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=5, help='timed runs (best is reported)')
    parser.add_argument('--settings', nargs='+', default=['Reasonable'])
    parser.add_argument('--num-images', type=int, default=4024)
    args = parser.parse_args()

    gts, dts = make_test_set(args.num_images)
    n_gt = sum(len(g['labels']) for g in gts)
    n_dt = sum(len(d) for d in dts)
    print(f'{args.num_images} images, {n_gt} gt boxes, {n_dt} detections, '
          f'settings {args.settings}')

    def best_of(fn, n):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

    t_vec, res = best_of(lambda: evaluate_caltech(gts, dts, args.settings), args.repeat)
    loop_settings = [dict(name=s, **CALTECH_SETTINGS[s]) for s in args.settings]
    t_loop, ref = best_of(lambda: evaluate_caltech_loop(gts, dts, loop_settings),
                          max(1, args.repeat // 2))
    print(f'{"setting":<14}{"MR-2 %":>10}{"MR-4 %":>10}{"#gt":>8}{"#dt":>8}   loop identical')
    for s in args.settings:
        r = res[s]
        same = np.isclose(r['MR-2'], ref[s][0], rtol=1e-12) and np.isclose(
            r['MR-4'], ref[s][1], rtol=1e-12)
        print(f'{s:<14}{100 * r["MR-2"]:>10.4f}{100 * r["MR-4"]:>10.4f}{r["num_gt"]:>8}'
              f'{r["num_dets"]:>8}   {same}')
        if not same:
            raise SystemExit(f'MISMATCH in {s}: vectorised {r["MR-2"]}, {r["MR-4"]}; '
                             f'loop {ref[s]}')
    print(f'vectorised: {t_vec * 1000:8.1f} ms   (best of {args.repeat})')
    print(f'loops:      {t_loop * 1000:8.1f} ms')
    print(f'speed-up:   {t_loop / t_vec:8.1f}x')


if __name__ == '__main__':
    main()
