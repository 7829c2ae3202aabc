"""One vtest study run from its options to ``report.md``: data, stages, scoring, report."""
import json
import os
import os.path as osp
import time
from typing import Dict

from mmmimic.fileio import atomic_write_text, check_output_path
from .common import StageError, log
from .data import prepare_data
from .job import MainJob
from .report import (REPORT_FILES, check_offline_scores, frame_records, intervals, model_rows,
                     plot_curves, precondition, write_report)


def run_study(args) -> Dict:
    """Run the study with ``args`` (:func:`~.options.parse_args`) and write ``report.md``,
    ``results.json`` and ``mr_fppi.png`` into ``args.out``; returns the content of
    ``results.json``.

    An earlier run's report files are refused (``FileExistsError``) before any stage runs
    unless ``args.overwrite``; a stage error exits with status 1 (``SystemExit``) after logging
    it."""
    os.makedirs(args.out, exist_ok=True)
    for name in REPORT_FILES:  # before hours of stages, not after them
        check_output_path(osp.join(args.out, name), args.overwrite, 'study output')
    import mmmimic  # noqa: F401
    t_start = time.time()
    try:
        prepare_data(args)
        job = MainJob(args)
        out = job.run()
    except StageError as err:
        log(f'stopped: {err}')
        raise SystemExit(1)
    records = frame_records(job)
    check_offline_scores(job, out['results'], records)
    plot_curves(job, records)
    rows = model_rows(job, out['results'], out['speed'])
    pre = precondition(job, out['val'])
    ivs = intervals(job, out['results'], records) if len(args.seeds) > 1 else []
    wall = time.time() - t_start
    summary = dict(args={k: v for k, v in vars(args).items()}, results=out['results'],
                   val=out['val'], speed=out['speed'], rows=rows, precondition=pre,
                   intervals=ivs, stage_seconds=job.stage_times, wall_seconds=wall)
    atomic_write_text(osp.join(args.out, 'results.json'),
                      json.dumps(summary, indent=1, default=str), args.overwrite, 'results file')
    print(write_report(job, rows, pre, ivs, wall))
    log(f'done in {wall / 60:.1f} min; report: {args.out}/report.md')
    return summary
