"""The vtest study in one command: does feature mimic help where the teacher knows more?

    python -m projects.vtest_mimic.tools.run --quick   # 3 seeds, the cross-scale block
    python -m projects.vtest_mimic.tools.run           # 5 seeds, every block, stage 2

Builds the pedestrian data from OpenCV's sample video ``vtest.avi`` (classical,
model-independent labels written as a Caltech-format release and converted with the converter a
Caltech user runs), then

1. trains the teacher, the full-width Inception RPN on the full-size 640x480 frames (``--teacher``
   picks another candidate; ``tools/teacher_sweep.py`` compares them on validation),
   validating every few hundred iterations and keeping the checkpoint with the best validation
   MR-2;
2. fills the teacher-feature cache (the teacher's map of every training frame and flip), so a
   mimic run costs about what a scratch run costs;
3. per seed, trains the students of each block from paired initial weights (the same seed, data
   order and initial weights for mimic and scratch): cross-scale (the headline, paper Sec. 3.5 /
   Table 10), same-input (Tables 5/7) and stage 2 (Tables 6/9);
4. scores every model on every frame of the test split (official Caltech MR-2/MR-4, AP at IoU
   0.5, proposal recall) and the teacher and scratch students on the validation split (the
   precondition: is the teacher better?), times every model at its own input, and writes
   ``report.md``, ``results.json``, ``mr_fppi.png`` and ``speed/`` into the output folder, with
   paired differences, t-intervals over seeds and bootstrap intervals over test frames.

The presets are ``projects/vtest_mimic/configs/presets/{quick,default}.py``; ``--cfg-options
KEY=VALUE`` overrides their keys. Every stage prints its ETA; finished stages are reused and an
interrupted training resumes from its last checkpoint (``--force NAME`` redoes a model). A stage
whose config changed since it ran (another teacher, schedule or data) stops the run and names it.
``--device`` (default ``auto``: CUDA when present) picks where the training, cache and scoring
stages run; the speed table is timed on the CPU (``tools/gpu_check.py``: the prepared GPU check).

These are NOT Caltech numbers: one static campus scene, labels from a classical procedure
(``projects/vtest_mimic/docs/labels.md``). The method and the tables: the project's README.
"""
from typing import Dict, Optional, Sequence

from projects.vtest_mimic.vtest_mimic.options import parse_args
from projects.vtest_mimic.vtest_mimic.study import run_study


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Parse ``argv`` and run the study; returns the content of ``results.json``."""
    return run_study(parse_args(argv))


if __name__ == '__main__':
    main()
