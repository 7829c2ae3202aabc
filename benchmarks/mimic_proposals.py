"""The mimic proposals' exact cheap pass on real images: how often it proves itself, what it saves.

    python -m benchmarks.mimic_proposals CONFIG STUDENT_CKPT [--scale 2.0] [--images 100]
        [--candidates 500 1000 500,1000] [--out DIR] [--name NAME] [--overwrite]

(from the repository root: ``benchmarks`` is a namespace package, ``mmmimic`` is imported from
the checkout or its install).

An RPN-only student makes its mimic RoIs from its own predict step (``mimic_cfg.proposal``: the
top ``nms_pre`` anchors, decoded, NMS 0.7, the best ``max_per_img`` kept). The distiller runs
that step on the best ``mimic_cfg.proposal_candidates`` anchors first and keeps the result only
where it provably equals the full step (``mmmimic.models.dense_heads.proposals``); otherwise the
image is recomputed in full (a ladder such as ``500,1000`` tries its rungs in turn). On real
training images and a trained student, for each setting this measures:

- ``proven``: images whose cheap pass was kept (no recompute);
- ``identical``: images whose proposals equal the full step's (boxes and scores, bit for bit;
  must be every image, the script exits 1 otherwise);
- ``ms``: median time of the proposal step per image, and its ratio to the full step (the
  same images, the order of the settings rotated per image);
- for the full step, the RoIs it feeds: proposals, positives (IoU >= 0.5) and ground-truth boxes
  with a positive, per image.

Images: the training split of CONFIG's ``train_dataloader``, whole frames (no crop, no flip),
resized by ``--scale`` (e.g. 2.0 turns 480x640 frames into the 960x1280 input of a
1000x1333-class config). CONFIG is a ``FeatureMimicDistiller`` config; STUDENT_CKPT a trained
student (plain checkpoint, or a distiller checkpoint: its ``student.`` entries). Writes
``NAME.md`` / ``NAME.json`` to ``--out``; no file is overwritten without ``--overwrite``. Each
image's proposals are computed once per setting (and compared), so this pass keeps its own clock
rather than :mod:`mmmimic.utils.timing`, which repeats a callable.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import time

import torch

import mmmimic  # noqa: F401
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmmimic.models.dense_heads.proposals import candidate_ladder, rpn_proposals
from mmmimic.utils.checkpoint import STUDENT_PREFIX, load_state_dict
from mmmimic.utils.checks import check_output_path
from mmmimic.utils.tables import markdown_table


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a FeatureMimicDistiller config (RPN-only student)')
    parser.add_argument('student_ckpt', help='trained student (or distiller) checkpoint')
    parser.add_argument('--teacher-ckpt', help='override the config\'s teacher_ckpt (the '
                        'teacher is built, never run)')
    parser.add_argument('--scale', type=float, default=1.0, help='resize the frames by this')
    parser.add_argument('--images', type=int, default=100,
                        help='N training images, evenly spaced over the split')
    parser.add_argument('--candidates', type=ladder, nargs='+', default=[500, 1000, 2000],
                        help='settings to compare; a comma-separated ladder (500,1000) tries '
                        'its rungs in turn')
    parser.add_argument('--out', default='benchmarks/results/mimic_proposals')
    parser.add_argument('--name', default=None, help='name of this run in the output files')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args()


def ladder(text):
    """``'1000'`` -> 1000, ``'500,1000'`` -> (500, 1000) (checked by candidate_ladder)."""
    rungs = tuple(int(k) for k in text.split(','))
    candidate_ladder(rungs, '--candidates')
    return rungs[0] if len(rungs) == 1 else rungs


def build_distiller(cfg, args):
    model_cfg = copy.deepcopy(cfg.model)
    if args.teacher_ckpt:
        model_cfg.teacher_ckpt = args.teacher_ckpt
    model_cfg.pop('teacher_cache', None)  # the teacher's maps are not needed here
    model = MODELS.build(model_cfg)
    if getattr(model.student, 'with_roi_head', False):
        raise SystemExit(f'{args.config}: the student has a RoI head; a two-stage student '
                         'reuses its RoI head\'s proposals for the mimic RoIs, so there is '
                         'nothing to choose here')
    state = load_state_dict(args.student_ckpt, 'student checkpoint', prefix=STUDENT_PREFIX)
    missing, unexpected = model.student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f'{args.student_ckpt} does not fit the student of {args.config}: '
                         f'missing {missing[:5]}, unexpected {unexpected[:5]}')
    return model.eval()


def build_images(cfg, args):
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    if args.scale != 1.0:
        pipeline.append(dict(type='Resize', scale_factor=args.scale, keep_ratio=True))
    pipeline.append(dict(type='PackDetInputs'))
    ds_cfg.pipeline = pipeline
    dataset = DATASETS.build(ds_cfg)
    n = min(args.images, len(dataset))
    step = len(dataset) / n
    return dataset, [int(i * step) for i in range(n)]


@torch.no_grad()
def measure(model, dataset, indices, candidates):
    """Per image: the full step (reference) and the cheap pass at each candidate count."""
    cfg = model.mimic_cfg.proposal
    settings = [None] + list(candidates)  # None: the full step
    stats = {k: dict(seconds=[], proven=0, identical=0) for k in settings}
    rois = dict(proposals=[], pos=[], gt_hit=0, gt=0)
    rpn = model.student_rpn
    calls = []
    original = rpn.predict_by_feat

    def counting(*args, **kwargs):
        calls.append(kwargs['cfg'].get('nms_pre'))
        return original(*args, **kwargs)

    rpn.predict_by_feat = counting
    for n, idx in enumerate(indices):
        data = model.data_preprocessor(pseudo_collate([dataset[idx]]), True)
        inputs, samples = model.student_inputs(data['inputs'], data['data_samples'])
        samples = model._class_agnostic(samples)
        rpn_outs = rpn(model.student.extract_feat(inputs))
        metas = [s.metainfo for s in samples]
        anchors = rpn_outs[0][0][0].numel() // rpn.cls_out_channels
        if n == 0:  # warm-up: the first call of each setting is not timed
            for k in settings:
                rpn_proposals(rpn, *rpn_outs, metas, cfg, candidates=k)
        results = {}
        shift = n % len(settings)  # rotate the order: no setting always runs first
        for k in settings[shift:] + settings[:shift]:
            calls.clear()
            start = time.perf_counter()
            results[k] = rpn_proposals(rpn, *rpn_outs, metas, cfg, candidates=k)[0]
            stats[k]['seconds'].append(time.perf_counter() - start)
            if k is not None:  # proven: no call with the full settings
                stats[k]['proven'] += int(cfg.get('nms_pre') not in calls)
        full = results[None]
        for k in settings:
            stats[k]['identical'] += int(torch.equal(results[k].bboxes, full.bboxes)
                                         and torch.equal(results[k].scores, full.scores))
        gt = samples[0].gt_instances
        assign = model.roi_assigner.assign(InstanceData(priors=full.bboxes), gt,
                                           samples[0].get('ignored_instances', None))
        pos = assign.gt_inds > 0
        rois['proposals'].append(len(full))
        rois['pos'].append(int(pos.sum()))
        rois['gt'] += len(gt)
        rois['gt_hit'] += int(assign.gt_inds[pos].unique().numel())
    rpn.predict_by_feat = original
    return stats, rois, anchors


def summarise(stats, images):
    ref_ms = statistics.median(stats[None]['seconds']) * 1000
    rows = []
    for k, s in stats.items():
        ms = statistics.median(s['seconds']) * 1000
        rows.append(dict(candidates=k, proven=None if k is None else s['proven'] / images,
                         identical=s['identical'] / images, ms=ms, ratio=ms / ref_ms))
    return rows


def main():
    args = parse_args()
    register_all_modules()
    torch.set_grad_enabled(False)
    name = args.name or f'{osp.splitext(osp.basename(args.config))[0]}_x{args.scale:g}'
    os.makedirs(args.out, exist_ok=True)
    md, js = (check_output_path(osp.join(args.out, f'{name}.{ext}'), args.overwrite, 'result file')
              for ext in ('md', 'json'))
    cfg = Config.fromfile(args.config)
    model = build_distiller(cfg, args)
    dataset, indices = build_images(cfg, args)
    stats, rois, anchors = measure(model, dataset, indices, args.candidates)
    rows = summarise(stats, len(indices))
    proposal = dict(model.mimic_cfg.proposal)
    lines = [
        f'# mimic proposals, exact cheap pass: {name}', '',
        f'config `{args.config}`, student `{args.student_ckpt}`, {len(indices)} training images '
        f'x{args.scale:g} ({anchors} anchors per image), {torch.get_num_threads()} torch '
        f'threads; predict settings {proposal}', '',
        f'Full step per image: {statistics.mean(rois["proposals"]):.1f} proposals, '
        f'{statistics.mean(rois["pos"]):.1f} positives (IoU >= 0.5), ground-truth boxes with a '
        f'positive {rois["gt_hit"]}/{rois["gt"]}.', '']
    cells = []
    for r in rows:
        k = r['candidates']
        label = f'full (nms_pre {proposal.get("nms_pre")})' if k is None \
            else ' then '.join(map(str, k)) if isinstance(k, tuple) else str(k)
        proven = '-' if r['proven'] is None else f'{r["proven"]:.1%}'
        cells.append([label, proven, f'{r["identical"]:.1%}', f'{r["ms"]:.2f}',
                      f'{r["ratio"]:.2f}'])
    lines.append(markdown_table(cells, ['candidates', 'proven (no recompute)',
                                        'identical to the full step', 'ms / image', 'vs full'],
                                align=['left'] + ['right'] * 4))
    text = '\n'.join(lines) + '\n'
    print(text)
    with open(md, 'w') as f:
        f.write(text)
    with open(js, 'w') as f:
        json.dump(dict(config=args.config, student_ckpt=args.student_ckpt, scale=args.scale,
                       images=len(indices), anchors=anchors, proposal=proposal,
                       full_step_rois=dict(proposals=statistics.mean(rois['proposals']),
                                           positives=statistics.mean(rois['pos']),
                                           gt_hit=rois['gt_hit'], gt=rois['gt']),
                       rows=rows), f, indent=2)
    if any(r['identical'] < 1 for r in rows):
        raise SystemExit('the cheap pass differed from the full step on some image')


if __name__ == '__main__':
    main()
