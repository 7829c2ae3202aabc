"""Per-iteration cost of a stage-1 mimic step, and Eq. 4 vectorised vs the per-RoI loop.

    python -m benchmarks.mimic_step [--config CFG] [--height 1000 --width 1333] [--iters 3]
    python -m benchmarks.mimic_step --cache [--iters 2]   # cached vs live vs scratch ratios
    python -m benchmarks.mimic_step --served-from-cache [--frame 480 640] ...  # breakdown, cached
    python -m benchmarks.mimic_step --from-run work_dirs/mimic_demo/seed0/xs-mimic-1-2  # real

(from the repository root: ``benchmarks`` is a namespace package, ``mmmimic`` is imported from
the checkout or its install).

Builds the distiller of ``--config`` (default: the Caltech 1/2-Inception mimic config; the teacher
gets random weights from a temporary checkpoint unless ``--teacher-ckpt`` is given: timing does
not depend on them), runs full training steps (forward, backward, SGD) on a random batch with
pedestrian-like boxes, and times each part of ``FeatureMimicDistiller.loss`` by wrapping the
methods it calls. The "mimic machinery" is what the student's GT training alone would not run:
the student's proposal predict step, assign + sample, connector and loss (forward and backward).
Then it times Eq. 4 on the step's real maps and RoIs, vectorised vs one RoI at a time.
``--from-run STAGE_DIR`` times the same breakdown on real training batches of a finished main-job
stage instead: its ``stage_config.py``, its last checkpoint (trained heads, so the proposal step
proves itself as often as in training), its data pipeline and its teacher cache.
Numbers are wall-clock seconds on whatever machine runs it; CPU numbers are noisy.

``--cache``: for each of ``CACHE_CASES`` (Caltech 1/2-Inception, cross-scale 1/2-Inception,
the vtest configs; or ``--config`` at ``--height x --width``) one run times, interleaved, a
scratch student step (the student alone on its own input), the mimic step with the live teacher
and the mimic step with the teacher map served by a ``TeacherFeatureCache`` (an LMDB store
filled with this batch's teacher maps in float16: the real lookup, decode and copy), each a full
forward + backward + SGD step, timed round-robin by :func:`mmmimic.utils.time_round_robin`,
and prints (mimic step) / (scratch step) for both.
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import tempfile
import time
from collections import defaultdict

import torch

import mmmimic  # noqa: F401
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmmimic.models.distillers import feature_mimic_distiller as fmd
from mmmimic.models.losses import proposal_sampled_l2_loss
from mmmimic.testing.losses import proposal_sampled_l2_loss_reference
from mmmimic.utils import markdown_table, time_round_robin

DEFAULT_CONFIG = 'configs/mimic/rpn_inception-1-2_mimic-inception_1xb2-40k_caltech.py'
# (config, teacher input h, w, batch, cached image h, w): the sizes each config trains at; vtest
# trains on 320x384 crops of 480x640 frames, so its entries hold whole frames, served sliced
VTEST = 'projects/vtest_mimic/configs/'  # the vtest study's configs
CACHE_CASES = (
    (DEFAULT_CONFIG, 1000, 1333, 1, 1000, 1333),
    ('configs/cross_scale/'
     'rpn_inception-1-2-deconv_mimic-inception_1xb2-40k_caltech-480x640.py', 960, 1280, 1, 960,
     1280),
    (VTEST + 'rpn_inception-1-2_mimic-inception_vtest.py', 320, 384, 2, 480, 640),
    (VTEST + 'rpn_inception-1-4_mimic-inception_vtest.py', 320, 384, 2, 480, 640),
    # the vtest study's cross-scale students (half input, deconv)
    (VTEST + 'rpn_inception-1-2-deconv_mimic-inception_vtest-half.py', 320, 384, 2, 480, 640),
    (VTEST + 'rpn_inception-1-4-deconv_mimic-inception_vtest-half.py', 320, 384, 2, 480, 640),
)
MIMIC_PARTS = ('proposals (student RPN predict + NMS)', 'assign + sample RoIs', 'connector fwd',
               'mimic loss fwd', 'connector + loss bwd (isolated)')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--teacher-ckpt', default=None)
    parser.add_argument('--height', type=int, default=None)
    parser.add_argument('--width', type=int, default=None)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--loss-reps', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='write the numbers as JSON here')
    parser.add_argument('--cache', action='store_true',
                        help='ratios (mimic step with cache | live teacher) / scratch step')
    parser.add_argument('--served-from-cache', action='store_true',
                        help='breakdown of the step whose teacher map comes from an LMDB '
                        'TeacherFeatureCache (as in training with teacher_cache)')
    parser.add_argument('--frame', type=int, nargs=2, metavar=('H', 'W'),
                        help='with --served-from-cache: the cached image size (a larger '
                        'frame is served as a stride-aligned crop, as vtest entries are)')
    parser.add_argument('--proposal-candidates', type=int, default=None,
                        help='mimic_cfg.proposal_candidates (0: the exact cheap pass off)')
    parser.add_argument('--from-run', metavar='STAGE_DIR',
                        help='breakdown on real batches of a finished main-job stage (its '
                        'stage_config.py, trained checkpoint, data and teacher cache), e.g. '
                        'work_dirs/mimic_demo/seed0/xs-mimic-1-2')
    parser.add_argument('--proposal', type=json.loads, default=None,
                        help='JSON dict merged into mimic_cfg.proposal, e.g. \'{"nms_pre": 1000}\'')
    args = parser.parse_args()
    args.height_given = args.height is not None
    args.height = 1000 if args.height is None else args.height
    args.width = 1333 if args.width is None else args.width
    return args


def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


class MethodTimer:
    """Replaces ``obj.attr`` by a wrapper that adds its wall time to ``self.times[name]``."""

    def __init__(self, device):
        self.device = device
        self.times = defaultdict(float)
        self.last_args = {}

    def wrap(self, obj, attr, name):
        original = getattr(obj, attr)

        def timed(*args, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            out = original(*args, **kwargs)
            sync(self.device)
            self.times[name] += time.perf_counter() - start
            self.last_args[name] = args
            return out

        setattr(obj, attr, timed)


def make_batch(batch, height, width, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(batch):
        s = DetDataSample(metainfo=dict(
            img_shape=(height, width), pad_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), batch_input_shape=(height, width)))
        n = 6
        h = torch.rand(n, generator=g) * height * 0.3 + 50
        w = 0.41 * h
        x = torch.rand(n, generator=g) * (width - w)
        y = torch.rand(n, generator=g) * (height - h)
        s.gt_instances = InstanceData(
            bboxes=torch.stack([x, y, x + w, y + h], 1).to(device),
            labels=torch.zeros(n, dtype=torch.long, device=device))
        samples.append(s)
    inputs = torch.randn(batch, 3, height, width, generator=g).to(device)
    return inputs, samples


def apply_proposal_options(model, args):
    """``--proposal`` / ``--proposal-candidates`` into the distiller's ``mimic_cfg``; train mode."""
    if getattr(args, 'proposal', None):
        model.mimic_cfg.proposal.update(args.proposal)
    if getattr(args, 'proposal_candidates', None) is not None:
        model.mimic_cfg.proposal_candidates = args.proposal_candidates or None
    model.train()


def build_model(args):
    torch.manual_seed(0)  # the same random heads in every run: NMS cost depends on the scores
    cfg = Config.fromfile(args.config).model
    ckpt = args.teacher_ckpt
    if ckpt is None:
        teacher_cfg = cfg.teacher
        if isinstance(teacher_cfg, str):
            teacher_cfg = Config.fromfile(teacher_cfg).model
        ckpt = osp.join(tempfile.mkdtemp(), 'random_teacher.pth')
        torch.save({'state_dict': MODELS.build(teacher_cfg).state_dict()}, ckpt)
    cfg.teacher_ckpt = ckpt
    model = MODELS.build(cfg).to(args.device)
    apply_proposal_options(model, args)
    return model


def build_from_run(args):
    """The distiller of a finished main-job stage with its trained weights (student RPN
    head scores like in training, so the proposal step costs what it really costs), and an
    endless iterator over its real training batches (pipeline, crops, flips, cache keys)."""
    from mmengine.runner import Runner, load_checkpoint
    cfg = Config.fromfile(osp.join(args.from_run, 'stage_config.py'))
    args.config = osp.join(args.from_run, 'stage_config.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device)
    with open(osp.join(args.from_run, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    load_checkpoint(model, ckpt, map_location=args.device, logger='silent')
    apply_proposal_options(model, args)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg['num_workers'] = 0  # the step's own cost, not a worker's
    loader_cfg.pop('persistent_workers', None)
    loader = Runner.build_dataloader(loader_cfg, seed=0)

    def batches():
        while True:
            for data in loader:
                data = model.data_preprocessor(data, True)
                yield data['inputs'], data['data_samples']
    return model, batches()


def time_eq4(pred, target, rois, stride, reps):
    """Forward + backward of Eq. 4, vectorised vs per-RoI loop, on the same tensors."""
    results = {}
    for name, fn, n in (('vectorised', proposal_sampled_l2_loss, reps),
                        ('per-RoI loop', proposal_sampled_l2_loss_reference, max(1, reps // 2))):
        times = []
        for _ in range(n):
            leaf = pred.detach().clone().requires_grad_(True)
            sync(pred.device)
            start = time.perf_counter()
            loss = fn(leaf, target, rois, stride)
            loss.backward()
            sync(pred.device)
            times.append(time.perf_counter() - start)
        results[name] = dict(seconds=min(times), value=loss.item(), grad=leaf.grad)
    vec, ref = results['vectorised'], results['per-RoI loop']
    return dict(
        vectorised_s=vec['seconds'],
        per_roi_loop_s=ref['seconds'],
        speedup=ref['seconds'] / vec['seconds'],
        value_vectorised=vec['value'],
        value_per_roi=ref['value'],
        value_rel_diff=abs(vec['value'] - ref['value']) / max(abs(ref['value']), 1e-12),
        grad_max_abs_diff=(vec['grad'] - ref['grad']).abs().max().item(),
        num_rois=int(rois.shape[0]),
        map_shape=list(pred.shape))


def attach_filled_cache(model, inputs, samples, cache_dir, frame_hw):
    """Fill an LMDB TeacherFeatureCache with one float16 entry per image of the batch (the
    teacher's map of a random ``frame_hw`` image; a smaller batch is a stride-aligned crop of
    it, served sliced) and make ``model`` serve its teacher map from it."""
    from mmmimic.models.distillers.teacher_features import CachedTeacherFeatures
    from mmmimic.teacher_cache import TeacherFeatureCache, cache_key
    cache = TeacherFeatureCache(cache_dir, dict(hash='benchmark'), dtype='float16',
                                max_gb=4.0, readonly=False)
    frames = torch.randn(inputs.shape[0], 3, *frame_hw, device=inputs.device)
    with torch.no_grad():
        feats = model.teacher.extract_feat(frames)[model.teacher_feature]
    for i, sample in enumerate(samples):
        meta = dict(img_path=f'bench/{i}.png', flip=False, flip_direction=None)
        if tuple(frame_hw) != tuple(sample.img_shape):
            meta.update(crop_offset=(64, 32), precrop_shape=tuple(frame_hw))
        sample.set_metainfo(meta)
        cache.put(cache_key(sample.img_path, None, frame_hw), feats[i])
    cache.mark_complete(len(samples))
    model.teacher_features = CachedTeacherFeatures(
        cache, dict(loading=[]), model.teacher_features, model.teacher_feature,
        int(model.teacher_stride), model.data_preprocessor)
    model.teacher_features.verified = True
    return cache


def cache_ratios(args, config, height, width, batch, frame_h=None, frame_w=None):
    """Interleaved scratch / live / cached steps of one config; returns the median seconds
    and the median over rounds of each round's ratio (a round runs the three steps back to
    back, so load changes on a shared machine hit them alike)."""
    frame_hw = (frame_h or height, frame_w or width)
    args.config = config
    model = build_model(args)
    student = copy.deepcopy(model.student)  # the same network, trained alone
    inputs, samples = make_batch(batch, height, width, args.device)
    s_inputs, s_samples = model.student_inputs(inputs, samples)
    s_samples = model._class_agnostic(s_samples)
    live = model
    cached = copy.deepcopy(model)
    cache = attach_filled_cache(cached, inputs, samples, tempfile.mkdtemp(), frame_hw)
    cached.teacher.to('meta')  # proves the cached step never runs the teacher

    def step_fn(net, x, ds):
        params = [p for p in net.parameters() if p.requires_grad]
        optim = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

        def step():
            losses = net.loss(x, copy.deepcopy(ds))
            total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
            optim.zero_grad()
            total.backward()
            optim.step()
            sync(args.device)
        return step

    steps = dict(scratch=step_fn(student.train(), s_inputs, s_samples),
                 live=step_fn(live.train(), inputs, samples),
                 cached=step_fn(cached.train(), inputs, samples))
    # interleaved: load changes hit all three alike; one single-call block per round, so
    # times[k][i] is round i of every step
    timings = time_round_robin(list(steps.values()), rounds=args.iters, warmup=args.warmup,
                               labels=list(steps))
    times = {t.label: [ms / 1000 for ms in t.times_ms] for t in timings}
    cache.close()
    median = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: statistics.median(t / s for t, s in zip(times[k], times['scratch']))
              for k in ('live', 'cached')}
    return dict(config=config, input=[batch, 3, height, width], seconds=median,
                live_ratio=ratios['live'], cached_ratio=ratios['cached'],
                entry_mib=cache_entry_mib(model, *frame_hw))


def cache_entry_mib(model, height, width):
    """Size of one float16 entry: the teacher map of a (padded) ``height x width`` image."""
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1
    h, w = (-(-height // divisor) * divisor, -(-width // divisor) * divisor)
    stride = model.teacher_stride
    with torch.no_grad():
        param = next(model.teacher.parameters())
        channels = model.teacher.extract_feat(param.new_zeros(1, 3, 64, 64))[
            model.teacher_feature].shape[1]
    return channels * -(-h // stride) * -(-w // stride) * 2 / 2**20


def main_cache(args):
    cases = CACHE_CASES if args.config == DEFAULT_CONFIG and not args.height_given else \
        ((args.config, args.height, args.width, args.batch, args.height, args.width), )
    rows = [cache_ratios(args, *case) for case in cases]
    print(f'mimic step / scratch student step on {args.device} ({torch.get_num_threads()} '
          f'threads, {args.iters} timed rounds, medians; GiB/1000 img: 2 flip states)')
    cells = [[osp.basename(r['config']), 'x'.join(map(str, r['input'])),
              *(f'{r["seconds"][k] * 1000:.0f}' for k in ('scratch', 'live', 'cached')),
              f'{r["live_ratio"]:.2f}', f'{r["cached_ratio"]:.2f}', f'{r["entry_mib"]:.3f}',
              f'{r["entry_mib"] * 2 * 1000 / 1024:.2f}'] for r in rows]
    print(markdown_table(cells, ['config', 'teacher input', 'scratch ms', 'live ms', 'cached ms',
                                 'live / scratch', 'cached / scratch', 'entry MiB',
                                 'GiB / 1000 img'], align=['left', 'left'] + ['right'] * 7))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=2)


def main():
    args = parse_args()
    register_all_modules()
    if args.cache:
        return main_cache(args)
    if args.from_run:
        model, batches = build_from_run(args)
        cached = model.teacher_cache is not None
    else:
        model = build_model(args)
        inputs, samples = make_batch(args.batch, args.height, args.width, args.device)
        batches = iter(lambda: (inputs, samples), None)
        cached = args.served_from_cache
    timer = MethodTimer(args.device)
    rpn = model.student_rpn
    connector_fwd, mimic_loss_fwd = model.connector.forward, model.mimic_loss.forward  # unwrapped
    timer.wrap(model.student, 'extract_feat', 'student backbone fwd')
    timer.wrap(rpn, 'forward', 'student RPN head fwd')
    timer.wrap(rpn, 'loss_by_feat', 'student RPN GT losses')
    # the whole proposal step as the distiller calls it: the cheap pass, its proof and any
    # recompute (wrapping predict_by_feat alone would leave the proof's cost unattributed)
    timer.wrap(fmd, 'rpn_proposals', MIMIC_PARTS[0])
    timer.wrap(model, 'sample_rois', MIMIC_PARTS[1])
    if args.served_from_cache and not args.from_run:
        frame_hw = tuple(args.frame) if args.frame else (args.height, args.width)
        attach_filled_cache(model, inputs, samples, tempfile.mkdtemp(), frame_hw)
        model.teacher.to('meta')  # the cached step never runs the teacher
    timer.wrap(model, 'teacher_features',
               'teacher map from cache' if cached else 'teacher fwd (no_grad)')
    timer.wrap(model.connector, 'forward', MIMIC_PARTS[2])
    timer.wrap(model.mimic_loss, 'forward', MIMIC_PARTS[3])
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            momentum=0.9)

    totals = defaultdict(float)
    for it in range(args.warmup + args.iters):
        inputs, samples = next(batches)
        timer.times.clear()
        sync(args.device)
        t0 = time.perf_counter()
        losses = model.loss(inputs, samples)
        total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
        sync(args.device)
        t1 = time.perf_counter()
        optim.zero_grad()
        total.backward()
        sync(args.device)
        t2 = time.perf_counter()
        optim.step()
        sync(args.device)
        t3 = time.perf_counter()
        # the connector + loss backward alone, on the same tensors (part of "backward" above)
        student_map = timer.last_args[MIMIC_PARTS[2]][0].detach().requires_grad_(True)
        pred_args = timer.last_args[MIMIC_PARTS[3]]
        mimic = mimic_loss_fwd(connector_fwd(student_map), *pred_args[1:])
        sync(args.device)
        t5 = time.perf_counter()
        mimic.backward()
        sync(args.device)
        timer.times[MIMIC_PARTS[4]] = time.perf_counter() - t5
        if it >= args.warmup:
            for k, v in timer.times.items():
                totals[k] += v / args.iters
            totals['step total (fwd + bwd + SGD)'] += (t3 - t0) / args.iters
            totals['backward (all)'] += (t2 - t1) / args.iters
            totals['SGD step'] += (t3 - t2) / args.iters

    step = totals['step total (fwd + bwd + SGD)']
    mimic_cost = sum(totals[k] for k in MIMIC_PARTS)
    report = dict(
        config=args.config, from_run=args.from_run, device=args.device,
        input=list(inputs.shape), served_from_cache=bool(cached),
        proposal=dict(model.mimic_cfg.proposal),
        proposal_candidates=model.mimic_cfg.proposal_candidates,
        threads=torch.get_num_threads(), iters=args.iters,
        breakdown_s={k: round(v, 5) for k, v in totals.items()},
        mimic_machinery_s=round(mimic_cost, 5),
        mimic_machinery_fraction=round(mimic_cost / step, 4))
    pred, target, rois, stride = timer.last_args[MIMIC_PARTS[3]]
    report['eq4'] = {k: (round(v, 8) if isinstance(v, float) else v)
                     for k, v in time_eq4(pred, target, rois, stride, args.loss_reps).items()}

    print(f'mimic step on {args.device}, input {report["input"]}, {args.iters} timed iterations '
          f'({torch.get_num_threads()} threads), teacher map '
          f'{"from the cache" if cached else "from the live teacher"}, '
          f'proposals {report["proposal"]}, cheap pass on {report["proposal_candidates"]} '
          'candidates')
    for k, v in totals.items():
        mark = '  [mimic]' if k in MIMIC_PARTS else ''
        print(f'  {k:<42s} {v * 1000:10.1f} ms {100 * v / step:6.2f}%{mark}')
    print(f'  mimic machinery total: {mimic_cost * 1000:.1f} ms = '
          f'{100 * mimic_cost / step:.2f}% of the step (goal <= 3%)')
    e = report['eq4']
    print(f'Eq. 4 on {e["num_rois"]} RoIs, map {e["map_shape"]}: vectorised '
          f'{e["vectorised_s"] * 1000:.2f} ms, per-RoI loop {e["per_roi_loop_s"] * 1000:.2f} ms '
          f'(fwd + bwd): {e["speedup"]:.1f}x (goal >= 20x); value rel. diff '
          f'{e["value_rel_diff"]:.2e}, grad max abs diff {e["grad_max_abs_diff"]:.2e}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
