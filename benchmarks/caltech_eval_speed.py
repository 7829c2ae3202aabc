"""Time the Caltech test-set evaluation (Reasonable MR-2 + MR-4) against a loop implementation,
and measure the time and memory of a scoring process, light vs full import.

Synthetic data of the size of the Caltech test set: 4024 frames of 640x480, ~7.6k gt boxes
(persons of all heights, some occluded, some ``people``/``person?`` ignore regions) and ~40k
detections (2-3 jittered boxes near most gts, the rest false positives), scores tied in places;
``--dets-per-image 50`` gives every frame exactly 50 detections (201k in all).

Both implementations get the same raw per-image annotations and detections and run the whole
dbEval pipeline (gt filtering, 0.41 standardisation, detection height filter, matching, curve,
MR-2 and MR-4). The loop version (``mmmimic.testing.caltech_loop``) transcribes the
toolbox's MATLAB loops; the script checks that both give identical numbers and prints the ratio.

``--footprint`` instead runs ``evaluate_caltech`` in two fresh processes, one importing only
``mmmimic.evaluation.functional`` (numpy core only, as ``tools/analysis_tools/caltech_eval.py``
runs) and one that first registers everything (``mmmimic.register_all_modules()``: torch, mmdet,
every registry), and prints the import time, the
resident memory after the import, the evaluation time and the peak resident memory of each.

Usage::

    python -m benchmarks.caltech_eval_speed [--repeat 5] [--settings Reasonable All]
    python -m benchmarks.caltech_eval_speed --footprint --dets-per-image 50
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), in MB."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def make_test_set(num_images: int = 4024, seed: int = 0, dets_per_image: int = 0):
    """Synthetic raw annotations and detections in the Caltech test-set proportions (with
    ``dets_per_image``, exactly that many detections per frame, false positives filling up)."""
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
        if dets_per_image:
            near = near[:dets_per_image]
            nfp = dets_per_image - len(near)
        else:
            nfp = int(rng.poisson(10 - len(near) if len(near) < 10 else 1))
        fh = np.exp(rng.uniform(np.log(25), np.log(250), nfp))
        fps = np.c_[rng.uniform(0, 600, nfp), rng.uniform(0, 480 - fh), .41 * fh, fh]
        d = np.concatenate([near, fps])
        scores = np.round(rng.random(len(d)), 3)  # ties happen, as with real result files
        scores[:len(near)] = np.minimum(1, scores[:len(near)] + .3)
        dts.append(np.c_[d, scores])
    return gts, dts


def best_of(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def footprint_child(args) -> None:
    """One measurement process: import, data, evaluation; prints one JSON line."""
    rss0 = _rss_mb()
    t = time.perf_counter()
    if args.child == 'full':
        import mmmimic
        mmmimic.register_all_modules()
    from mmmimic.evaluation.functional import evaluate_caltech
    t_import = time.perf_counter() - t
    rss_import = _rss_mb()
    gts, dts = make_test_set(args.num_images, dets_per_image=args.dets_per_image)
    rss_data = _rss_mb()
    t_eval, res = best_of(lambda: evaluate_caltech(gts, dts, args.settings), args.repeat)
    print(json.dumps(dict(
        light=args.child == 'light', import_s=t_import,
        rss_start_mb=rss0, rss_after_import_mb=rss_import, rss_after_data_mb=rss_data,
        eval_s=t_eval, peak_rss_mb=_peak_rss_mb(),
        torch_loaded='torch' in sys.modules, mmdet_loaded='mmdet' in sys.modules,
        num_dets=int(sum(len(d) for d in dts)),
        mr2={s: res[s]['MR-2'] for s in args.settings})))


def footprint(args) -> None:
    rows = []
    for light in (True, False):
        cmd = [sys.executable, os.path.abspath(__file__), '--child',
               'light' if light else 'full', '--num-images',
               str(args.num_images), '--dets-per-image', str(args.dets_per_image), '--repeat',
               str(args.repeat), '--settings', *args.settings]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f'{args.num_images} images, {rows[0]["num_dets"]} detections, settings '
          f'{args.settings}; evaluation best of {args.repeat}')
    print(f'{"import":<8}{"import s":>10}{"RSS after import MB":>21}{"eval s":>9}'
          f'{"peak RSS MB":>13}{"torch/mmdet loaded":>20}')
    for r in rows:
        print(f'{"light" if r["light"] else "full":<8}{r["import_s"]:>10.2f}'
              f'{r["rss_after_import_mb"]:>21.0f}{r["eval_s"]:>9.3f}{r["peak_rss_mb"]:>13.0f}'
              f'{str(r["torch_loaded"]) + "/" + str(r["mmdet_loaded"]):>20}')
    if rows[0]['mr2'] != rows[1]['mr2']:
        raise SystemExit(f'MISMATCH: light {rows[0]["mr2"]} vs full {rows[1]["mr2"]}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=5, help='timed runs (best is reported)')
    parser.add_argument('--settings', nargs='+', default=['Reasonable'])
    parser.add_argument('--num-images', type=int, default=4024)
    parser.add_argument('--dets-per-image', type=int, default=0,
                        help='exactly this many detections per frame (0: ~10, as Caltech)')
    parser.add_argument('--footprint', action='store_true',
                        help='time and peak memory of a scoring process, light vs full import')
    parser.add_argument('--child', choices=('light', 'full'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return footprint_child(args)
    if args.footprint:
        return footprint(args)
    from mmmimic.evaluation.functional import CALTECH_SETTINGS, evaluate_caltech
    from mmmimic.testing.caltech_loop import evaluate_caltech_loop

    gts, dts = make_test_set(args.num_images, dets_per_image=args.dets_per_image)
    n_gt = sum(len(g['labels']) for g in gts)
    n_dt = sum(len(d) for d in dts)
    print(f'{args.num_images} images, {n_gt} gt boxes, {n_dt} detections, '
          f'settings {args.settings}')

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
