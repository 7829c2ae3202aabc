"""Choose the study's RPN teacher on the VALIDATION split of the vtest data.

The candidates (``TEACHER_CANDIDATES`` of ``vtest_mimic/models.py``) differ in what the teacher
sees while it trains (the network is the same; the anchors follow the input scale):

* ``full``: the run's own teacher, the full-width Inception RPN on the full-size 640x480 frames
  (its run is the study run's, reused);
* ``x2``: the same network on the frames upscaled x2 (1280x960: the paper's Sec. 3.5 teacher sees
  a ~1000 px short side), anchors doubled with the people, trained on 320x384 crops of the
  upscaled frames (the same cost per iteration);
* ``jitter``: the full-size frames with scale jitter (x0.8-1.25) and photometric distortion
  before the same crops and flips (tested on the plain full-size frames).

Each candidate trains with the run's teacher stage (same schedule, seed, data and output
folder), is validated every ``--teacher-val-interval`` iterations on every validation frame and
keeps its best checkpoint; that checkpoint is then re-scored on the validation split. The rule:
the candidate whose kept checkpoint has the lowest validation MR-2 (Caltech Reasonable); AP at
IoU 0.5 is reported beside it. The test split is never read.

    python -m projects.vtest_mimic.tools.teacher_sweep \\
        --commit-to projects/vtest_mimic/results/teacher_sweep

Writes ``<out>/teacher_sweep/teacher_sweep.{md,json,png}`` (the PNG: validation MR-2 against
iteration per candidate) and, with ``--commit-to``, a copy to commit. Every option of the run
(``--out``, ``--teacher-iters``, ``--video``, ...) is accepted. When a candidate other than the
preset's wins, the choice is reported, not applied: moving the presets to it re-runs every stage
that reads the teacher.
"""
import argparse
from typing import Dict, Optional, Sequence

from projects.vtest_mimic.vtest_mimic.models import TEACHER_CANDIDATES
from projects.vtest_mimic.vtest_mimic.options import parse_args
from projects.vtest_mimic.vtest_mimic.sweeps import teacher_sweep


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--candidates', nargs='+', choices=list(TEACHER_CANDIDATES),
                        default=list(TEACHER_CANDIDATES))
    parser.add_argument('--commit-to', help='also write the sweep\'s md/json/png into this folder')
    args, rest = parser.parse_known_args(argv)
    demo_args = parse_args(rest + ['--blocks', 'cross-scale', '--skip-speed', '--no-cache'])
    return teacher_sweep(demo_args, args.candidates, commit_to=args.commit_to)


if __name__ == '__main__':
    main()
