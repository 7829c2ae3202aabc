"""The report of a vtest study run: the per-model table, the precondition, the paired
differences with their intervals, the MR-FPPI plot and ``report.md``."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmmimic.evaluation.functional.caltech_records import bootstrap_paired, load_frame_records
from mmmimic.fileio import atomic_write_text
from mmmimic.utils.tables import markdown_table
from .common import AP50, MR2, MR4, PRECONDITION_POINTS, StageError, log
from .models import BLOCK_TEACHER, BY_NAME, COMPARISONS, SPLIT_LISTS, TEST_SET
from .stats import gap_closed, paired_difference


def frame_records(job) -> Dict[str, Dict[int, object]]:
    """Every test result folder evaluated per frame once (for the frame bootstrap)."""
    keys, dirs = [], []
    for m in job.models:
        for seed in job.seeds_of(m):
            keys.append((m.name, seed))
            dirs.append(job.result_dir(m, seed))
    data_dir = job.args.data_dir
    records = load_frame_records(dirs, osp.join(data_dir, 'annotations'), setting='Reasonable',
                                 sets=(TEST_SET, ), img_list=osp.join(data_dir,
                                                                      SPLIT_LISTS['test']))
    out: Dict[str, Dict[int, object]] = {}
    for (name, seed), rec in zip(keys, records):
        out.setdefault(name, {})[seed] = rec
    return out


def check_offline_scores(job, results: Dict, records: Dict) -> None:
    """The result files, re-scored offline frame by frame, must give the metric's MR-2."""
    for name, per_seed in records.items():
        for seed, rec in per_seed.items():
            online = results[name][seed][MR2]
            offline = rec.value('MR-2')
            if abs(offline - online) > 1e-6:
                raise StageError(f'{name} (seed {seed}): MR-2 re-scored from the result files '
                                 f'{offline} != CaltechMRMetric {online}')
    log('scoring the result files offline reproduces CaltechMRMetric for every model')


def stat(per_seed: Dict[int, Dict[str, float]], key: str) -> Optional[tuple]:
    vals = np.array([per_seed[s][key] for s in sorted(per_seed) if key in per_seed[s]], float)
    if not len(vals):
        return None
    return (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            vals.tolist())


def _fmt_stat(s, digits: int = 1) -> str:
    if s is None:
        return '-'
    mean, std, vals = s
    return f'{mean:.{digits}f} ± {std:.{digits}f}' if len(vals) > 1 else f'{mean:.{digits}f}'


def model_rows(job, results: Dict, speed: Dict) -> List[Dict]:
    rows = []
    for m in job.models:
        per_seed = results[m.name]
        sp = speed.get(m.name, {})
        rows.append(dict(
            name=m.name, label=m.label, block=m.block, seeds=sorted(per_seed),
            params_m=sp.get('params_m'), speedup=sp.get('speedup'),
            speedup_over=sp.get('reference'), latency_ms=sp.get('latency_ms'),
            mr2=stat(per_seed, MR2), mr4=stat(per_seed, MR4), ap50=stat(per_seed, AP50),
            recall_05=stat(per_seed, 'proposal/recall@300_iou50'),
            recall_07=stat(per_seed, 'proposal/recall@300_iou70')))
    return rows


#: the columns of :func:`table`
TABLE_HEADERS = ('model', 'params (M)', 'speed-up', 'MR-2 (%)', 'MR-4 (%)', 'AP50 (%)',
                 'recall@300 IoU.5 (%)', 'recall@300 IoU.7 (%)')


def table(rows: Sequence[Dict]) -> str:
    """The Markdown table of :func:`model_rows` (mean ± std over seeds)."""
    cells = []
    for r in rows:
        params = f'{r["params_m"]:.2f}' if isinstance(r['params_m'], float) else '-'
        speedup = f'{r["speedup"]:.2f}x' if isinstance(r['speedup'], float) else '-'
        cells.append([r['label'], params, speedup, _fmt_stat(r['mr2']), _fmt_stat(r['mr4']),
                      _fmt_stat(r['ap50']), _fmt_stat(r['recall_05']),
                      _fmt_stat(r['recall_07'])])
    return markdown_table(cells, TABLE_HEADERS)


def _against_teacher(job, val: Dict, teacher: str, students: Sequence[str]) -> tuple:
    """The ``teacher``'s validation MR-2 (first seed), each of ``students``' mean over seeds and
    its margin over the teacher."""
    t = val[teacher][job.args.seeds[0]][MR2]
    means = {n: float(np.mean([v[MR2] for v in val[n].values()])) for n in students}
    return t, means, {n: m - t for n, m in means.items()}


def precondition(job, val: Dict) -> Dict:
    """Teacher vs scratch students on validation MR-2 (mean over seeds): the Inception blocks
    against the RPN teacher; the mmdet block against its own teacher (``mmdet``: None without
    that block)."""
    mmdet = None
    if 'mm-teacher' in val:
        t, studs, margins = _against_teacher(
            job, val, 'mm-teacher',
            [n for n in val if BY_NAME[n].block == 'mmdet' and n != 'mm-teacher'])
        mmdet = dict(teacher_val_mr2=t, students_val_mr2=studs, margins=margins,
                     met=all(v >= PRECONDITION_POINTS for v in margins.values()))
    if 'teacher' not in val:
        return dict(teacher_val_mr2=None, students_val_mr2={}, margins={}, met=None,
                    same_input_not_met=[], mmdet=mmdet)
    teacher, students, margins = _against_teacher(
        job, val, 'teacher', [n for n in val if n not in ('teacher', 'teacher-rfcn')
                              and BY_NAME[n].block != 'mmdet'])
    headline = [n for n in students if BY_NAME[n].block == 'cross-scale']
    # None: the run has no cross-scale (headline) block to judge
    met = all(margins[n] >= PRECONDITION_POINTS for n in headline) if headline else None
    # the same-input block is judged student by student: a scratch student at the teacher's own
    # input can come close to the teacher, leaving that comparison nothing to test
    short = [n for n in students
             if BY_NAME[n].block == 'same-input' and margins[n] < PRECONDITION_POINTS]
    return dict(teacher_val_mr2=teacher, students_val_mr2=students, margins=margins, met=met,
                same_input_not_met=short, mmdet=mmdet)


def intervals(job, results: Dict, records: Dict) -> List[Dict]:
    """Paired mimic-vs-control differences with t-intervals over seeds and frame-bootstrap
    intervals, and the share of the scratch-to-teacher gap closed."""
    out = []
    for block, width, mimic, scratch, other in COMPARISONS:
        if mimic not in results:
            continue
        for control in (scratch, other):
            if control is None or control not in results:
                continue
            a, b = mimic, control
            if control == other and block == 'stage2':  # two-stage mimic vs fine-tuning
                a, b = other, mimic
            row = dict(block=block, width=width, a=a, b=b)
            for key, metric in ((MR2, 'MR-2'), (AP50, 'AP')):
                diff = paired_difference({s: v[key] for s, v in results[a].items()},
                                         {s: v[key] for s, v in results[b].items()})
                boot = bootstrap_paired(records[a], records[b], metric=metric,
                                        n_boot=job.args.n_boot, block=job.args.boot_block)
                row[metric] = dict(seeds=diff.as_dict(), frames=boot.as_dict(),
                                   text=f'{diff.estimate:+.1f}; seeds {_iv(diff)}; frames '
                                        f'{_iv(boot)}')
            teacher = BLOCK_TEACHER[block]
            if b == scratch and teacher in records:
                t_rec = records[teacher][job.args.seeds[0]]
                g = gap_closed(records[scratch], records[a], t_rec, n_boot=job.args.n_boot,
                               block=job.args.boot_block)
                row['gap_closed'] = dict(estimate=g.estimate, text=g.format(),
                                         seeds=g.seeds.as_dict() if g.seeds else None,
                                         frames=g.frames.as_dict() if g.frames else None,
                                         reason=g.reason)
            out.append(row)
    return out


def _iv(iv) -> str:
    return f'[{iv.lo:+.1f}, {iv.hi:+.1f}]' if iv.ok else f'({iv.note})'


def _mmdet_precondition(pre: Optional[Dict]) -> List[str]:
    """The mmdet block's precondition paragraph (its own teacher against its scratch
    students)."""
    if pre is None:
        return []
    text = (f'mmdet block, validation MR-2: its teacher {pre["teacher_val_mr2"]:.1f}; scratch '
            'students (mean over seeds): ' +
            ', '.join(f'{BY_NAME[n].label} {v:.1f}' for n, v in pre['students_val_mr2'].items())
            + '. ')
    if pre['met']:
        text += (f'The teacher is at least {PRECONDITION_POINTS:.0f} points better than both: '
                 'the block can test the claim.')
    else:
        text += (f'**The teacher is NOT at least {PRECONDITION_POINTS:.0f} points better than '
                 'every scratch student of the block on validation: the block cannot test the '
                 'claim.**')
    return [text, '']


def weights_text(job) -> str:
    """The mimic weights of the run's mimic models, e.g. ``10 (xs-mimic-1-2, ...); 0.1
    (mimic-1-2)``."""
    by_weight: Dict[float, List[str]] = {}
    for m in job.models:
        if m.mimic:
            by_weight.setdefault(job.weight_of(m), []).append(m.name)
    return '; '.join(f'{w:g} ({", ".join(names)})' for w, names in by_weight.items())


def write_report(job, rows, pre, ivs, wall_s) -> str:
    """Write (and return) ``report.md`` of the run ``job`` (a :class:`~.job.MainJob`)."""
    args = job.args
    by_block: Dict[str, List[Dict]] = {}
    for r in rows:
        by_block.setdefault(r['block'], []).append(r)
    teacher_rows = {r['name']: r for r in rows if r['block'] == 'teacher'}
    lines = ['# vtest study: feature mimic on vtest.avi', '',
             f'Command: `python -m projects.vtest_mimic.tools.run {" ".join(args.argv)}` '
             f'(wall time {wall_s / 60:.0f} min on this machine).', '',
             '## Precondition: is the teacher better than the students trained alone?', '']
    if pre['teacher_val_mr2'] is not None:  # the Inception blocks
        lines += [f'Validation MR-2 (%, every validation frame, Reasonable): teacher '
                  f'{pre["teacher_val_mr2"]:.1f}; scratch students (mean over seeds): ' +
                  ', '.join(f'{BY_NAME[n].label} {v:.1f}'
                            for n, v in pre['students_val_mr2'].items()) + '.', '']
        if pre['met'] is None:
            lines.append('This run has no cross-scale (headline) block; the same-input students '
                         'are judged one by one below.')
        elif pre['met']:
            lines.append(f'The teacher is at least {PRECONDITION_POINTS:.0f} points better than '
                         'every cross-scale scratch student on validation: this run can test the '
                         'claim.')
        else:
            lines.append(f'**The teacher is NOT at least {PRECONDITION_POINTS:.0f} points better '
                         'than every cross-scale scratch student on validation: this run cannot '
                         'test the paper\'s claim** (there is no gap for mimic to close).')
        lines.append('')
    for n, margin in pre['margins'].items():  # the same-input students, one by one
        if BY_NAME[n].block != 'same-input':
            continue
        if n in pre['same_input_not_met']:
            lines += [f'**Same-input block: the teacher is only {margin:.1f} points better '
                      f'than the {BY_NAME[n].label} on validation (less than '
                      f'{PRECONDITION_POINTS:.0f}): that comparison cannot test the claim.**', '']
        else:
            lines += [f'Same-input block: the teacher is {margin:.1f} points better than the '
                      f'{BY_NAME[n].label} on validation: that comparison can test the claim.',
                      '']
    lines += _mmdet_precondition(pre.get('mmdet'))
    mmdet_text = (f' mmdet block: students {args.mmdet_iters} iterations, its teacher up to '
                  f'{args.mmdet_teacher_iters}, checkpoint chosen on validation MR-2 (every '
                  f'{args.teacher_val_interval}); pyramid level rule and lambda1 chosen on '
                  'validation (tools/mmdet_sweep.py).' if 'mmdet' in args.blocks else '')
    lines += [f'Seeds {list(args.seeds)} (mean ± sample std over seeds); mimic and scratch '
              'students are paired on each seed (same data order, crops and flips, same initial '
              'weights for the parts they share). Students: '
              f'{args.iters} iterations of batch 2 (320x384 crops of the 640x480 frames; '
              'half-input students see them at 160x192); stage 2: '
              f'{args.stage2_iters} more; teacher: up to {args.teacher_iters} iterations, '
              f'checkpoint chosen on validation MR-2 (every {args.teacher_val_interval}).'
              f'{mmdet_text} Mimic '
              f'weight lambda1: {weights_text(job)} (chosen on validation). Test: every test '
              'frame, whole 640x480 frames, Caltech Reasonable. Speed-up: CPU latency at '
              f'{args.speed_shape} frames, each model at its own input, over the teacher of its '
              'kind.', '']
    titles = {'teacher': 'Teachers',
              'cross-scale': 'Cross-scale (headline): students at half the teacher\'s input',
              'same-input': 'Same input: students at the teacher\'s input',
              'stage2': 'Stage 2: R-FCN students (cross-scale, 1/2)',
              'mmdet': 'mmdet block: pyramid mimic on mmdet\'s Faster R-CNN FPN and RetinaNet, '
                       'students at half the teacher\'s input'}
    for block, title in titles.items():
        if block not in by_block:
            continue
        # a block's table opens with its teacher where that teacher is a row of the Teachers table
        ref = None if block == 'teacher' else teacher_rows.get(BLOCK_TEACHER[block])
        block_rows = by_block[block] if ref is None else [ref] + by_block[block]
        lines += [f'## {title}', '', table(block_rows), '']
    if ivs:
        lines += ['## Paired differences (A - B; MR-2: negative = A better; AP50: positive = A '
                  'better)', '',
                  f'95% intervals: t over seeds (training noise) and percentile bootstrap over '
                  f'test frames ({args.n_boot} resamples of blocks of {args.boot_block} '
                  'consecutive frames, the same frames for every model and seed; '
                  'projects/vtest_mimic/docs/statistics.md).', '',
                  markdown_table([[f'{r["block"]} {r["width"]}', r['a'], r['b'],
                                   r['MR-2']['text'], r['AP']['text'],
                                   r.get('gap_closed', {}).get('text', '-')] for r in ivs],
                                 ('block', 'A', 'B', 'MR-2 diff', 'AP50 diff',
                                  'gap to the teacher closed by A')), '']
    lines += ['MR-FPPI curves of every model (seed %d): `mr_fppi.png`. Speed table: `speed/`.'
              % args.seeds[0], '',
              'These are NOT Caltech numbers: one static campus scene, labels from the classical '
              'procedure of projects/vtest_mimic/docs/labels.md.']
    report = '\n'.join(lines) + '\n'
    atomic_write_text(osp.join(args.out, 'report.md'), report, args.overwrite, 'report')
    return report


#: what a run writes at the end; an earlier run's are kept unless --overwrite
REPORT_FILES = ('report.md', 'results.json', 'mr_fppi.png')


def plot_curves(job, records: Dict) -> str:
    from mmmimic.evaluation.functional.caltech_plot import plot_mr_fppi
    from mmmimic.evaluation.functional.caltech_results import score_result_dirs
    seed = job.args.seeds[0]
    dirs, names = [], []
    for m in job.models:
        s = seed if m.seeded else job.args.seeds[0]
        dirs.append(job.result_dir(m, s))
        names.append(m.name)
    scored = score_result_dirs(dirs, osp.join(job.args.data_dir, 'annotations'),
                               settings=('Reasonable', ), sets=(TEST_SET, ),
                               img_list=osp.join(job.args.data_dir, SPLIT_LISTS['test']),
                               names=names)
    labels = {m.name: m.label for m in job.models}
    curves = [(labels[n], r['Reasonable']['fppi'], r['Reasonable']['miss_rate'],
               r['Reasonable']['MR-2']) for n, r in scored.items()]
    return plot_mr_fppi(curves, osp.join(job.args.out, 'mr_fppi.png'),
                        title=f'vtest.avi test frames, Reasonable (seed {seed})',
                        overwrite=job.args.overwrite)
