"""Scoring with FastExactRPNHead: the same detections as RPNHead, bit for bit, and the time saved.

    python -m benchmarks.fast_rpn_head CONFIG CKPT [--ann-file vtest_test.txt] [--frames N]
        [--candidates 1000] [--out DIR] [--name NAME] [--overwrite]

(from the repository root: ``benchmarks`` is a namespace package, ``mmmimic`` is imported from
the checkout or its install).

``FastExactRPNHead`` runs an RPN's predict step on the best ``--candidates`` anchors per level
first and keeps that result only where it provably equals the full ``nms_pre`` step
(``mmmimic.models.dense_heads.proposals``). This scores CONFIG's test split (``--ann-file``
overrides the list file) with the trained CKPT once per frame each way, the order alternating
per frame, and reports:

- ``identical``: frames whose detections (boxes, scores, labels) equal RPNHead's bit for bit
  (must be every frame: the script exits 1 otherwise);
- ``proven``: frames whose cheap pass was kept (no recompute);
- the median and total time of the whole test step (data preprocessor, network, predict) per
  frame, each way, and their ratio.

CONFIG: a detector or ``FeatureMimicDistiller`` config (the distiller predicts with its student;
its teacher cache is not read); CKPT: the trained checkpoint (a distiller's holds ``student.``
entries). Writes ``NAME.md`` / ``NAME.json`` to ``--out``; nothing is overwritten without
``--overwrite``. Each frame is scored once each way (its detections are compared), so this pass
keeps its own clock rather than :mod:`mmmimic.utils.timing`, which repeats a callable.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time

import torch

import mmmimic  # noqa: F401
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmmimic.models.dense_heads import FastExactRPNHead, use_fast_exact_rpn
from mmmimic.utils.checkpoint import load_state_dict
from mmmimic.utils.checks import check_output_path
from mmmimic.utils.tables import markdown_table


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a detector or FeatureMimicDistiller config')
    parser.add_argument('checkpoint', help='the trained checkpoint')
    parser.add_argument('--ann-file', help="override the test dataset's ann_file (list file)")
    parser.add_argument('--frames', type=int, help='score only N frames, evenly spaced')
    parser.add_argument('--candidates', type=int, default=1000)
    parser.add_argument('--out', default='benchmarks/results/fast_rpn_head')
    parser.add_argument('--name', help='name of this run in the output files')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args()


def build_model(cfg, args):
    cfg.model.pop('teacher_cache', None)
    if not use_fast_exact_rpn(cfg.model, args.candidates):
        raise SystemExit(f'{args.config}: no RPNHead in the model config')
    model = MODELS.build(cfg.model)
    state = load_state_dict(args.checkpoint, 'checkpoint')
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith('teacher.')]  # a distiller's teacher
    if missing or unexpected:
        raise SystemExit(f'{args.checkpoint} does not fit {args.config}: missing {missing[:5]}, '
                         f'unexpected {unexpected[:5]}')
    heads = [m for m in model.modules() if isinstance(m, FastExactRPNHead)]
    head = getattr(model, 'student_rpn', None) or heads[0]  # a distiller predicts with its student
    return model.eval(), head


def measure(model, head, dataset, indices, candidates):
    calls = []
    full_step = head.full_predict_by_feat

    def counting(*a, **kw):
        calls.append(kw['cfg'].nms_pre)
        return full_step(*a, **kw)

    head.full_predict_by_feat = counting
    settings = (None, candidates)  # None: RPNHead's step
    seconds = {k: [] for k in settings}
    proven = identical = detections = 0
    for n, idx in enumerate(indices):
        batch = pseudo_collate([dataset[idx]])
        out = {}
        order = settings if n % 2 == 0 else settings[::-1]
        if n == 0:
            for k in settings:  # warm-up, not timed
                head.proposal_candidates = k
                model.test_step(batch)
        for k in order:
            head.proposal_candidates = k
            calls.clear()
            start = time.perf_counter()
            out[k] = model.test_step(batch)[0].pred_instances
            seconds[k].append(time.perf_counter() - start)
            if k is not None:
                proven += int(calls == [candidates])
        a, b = out[None], out[candidates]
        detections += len(a)
        identical += int(torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)
                         and torch.equal(a.labels, b.labels))
    head.full_predict_by_feat = full_step
    return seconds, proven, identical, detections


def main():
    args = parse_args()
    register_all_modules()
    torch.set_grad_enabled(False)
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    os.makedirs(args.out, exist_ok=True)
    md, js = (check_output_path(osp.join(args.out, f'{name}.{ext}'), args.overwrite, 'result file')
              for ext in ('md', 'json'))
    cfg = Config.fromfile(args.config)
    model, head = build_model(cfg, args)
    ds_cfg = cfg.test_dataloader.dataset
    if args.ann_file:
        ds_cfg.ann_file = args.ann_file
    dataset = DATASETS.build(ds_cfg)
    n = min(args.frames or len(dataset), len(dataset))
    indices = [int(i * len(dataset) / n) for i in range(n)]
    seconds, proven, identical, detections = measure(model, head, dataset, indices,
                                                     args.candidates)
    ms = {k: statistics.median(v) * 1000 for k, v in seconds.items()}
    total = {k: sum(v) for k, v in seconds.items()}
    nms_pre = head.test_cfg.get('nms_pre')
    rows = [dict(head=f'RPNHead (nms_pre {nms_pre})', ms=ms[None], total_s=total[None],
                 ratio=1.0),
            dict(head=f'FastExactRPNHead ({args.candidates} candidates)',
                 ms=ms[args.candidates], total_s=total[args.candidates],
                 ratio=ms[args.candidates] / ms[None])]
    lines = [
        f'# Scoring with FastExactRPNHead: {name}', '',
        f'config `{args.config}`, checkpoint `{args.checkpoint}`, {n} frames of '
        f'`{ds_cfg.ann_file}`, {torch.get_num_threads()} torch threads; {detections} '
        'detections in all.', '',
        f'Identical to RPNHead (boxes, scores, labels, bit for bit): {identical}/{n} frames. '
        f'Cheap pass proven (no recompute): {proven}/{n} frames.', '',
        markdown_table([[r['head'], f'{r["ms"]:.1f}', f'{r["total_s"]:.1f}', f'{r["ratio"]:.2f}']
                        for r in rows],
                       ['RPN head', 'ms / frame (median, whole test step)', 'total s',
                        'vs RPNHead'], align=['left', 'right', 'right', 'right'])]
    text = '\n'.join(lines) + '\n'
    print(text)
    with open(md, 'w') as f:
        f.write(text)
    with open(js, 'w') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, ann_file=ds_cfg.ann_file,
                       frames=n, identical=identical, proven=proven, detections=detections,
                       rows=rows), f, indent=2)
    if identical < n:
        raise SystemExit(f'detections differed from RPNHead\'s on {n - identical} frames')


if __name__ == '__main__':
    main()
