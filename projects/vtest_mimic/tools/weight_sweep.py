"""Choose the study's mimic weight (lambda1) on the VALIDATION split of the vtest data.

The vtest release carves a validation part (set01) out of the video after the training part,
with a gap; the test part is never read here. The sweep uses the run's own stages (same output
folder, teacher chosen on validation, teacher-feature cache, paired initial weights and
schedule) and trains, per seed, the cross-scale 1/2-Inception student from scratch (with the
deconv; these runs are the study run's own, reused by it) and with feature mimic at each
candidate lambda1 (at the preset's lambda1 the run's own mimic runs are reused), then scores each
on every validation frame (Caltech Reasonable MR-2, AP at IoU 0.5). ``--block same-input`` sweeps
the same-input block's student (at the teacher's input) instead.

    python -m projects.vtest_mimic.tools.weight_sweep --quick --weights 0.1 1 10 --seeds 0 1
    python -m projects.vtest_mimic.tools.weight_sweep --block same-input --weights 0.1 1 10 \\
        --seeds 0 1

Writes ``<out>/mimic_sweep/sweep.{md,json}`` (``sweep_<block>_<width>`` for any other block or
width than the cross-scale 1/2 student; ``_<teacher folder>`` appended for a ``--teacher`` other
than the full-size one) and, with ``--commit-to``, a copy to commit (the chosen value goes into
``configs/presets/``). The rule: the lowest mean validation MR-2 over the seeds. Every option of
the run (``--out``, ``--quick``, ``--seeds``, ``--teacher``, ``--cfg-options``...) is accepted.
"""
import argparse
from typing import Dict, Optional, Sequence

from projects.vtest_mimic.vtest_mimic.options import parse_args
from projects.vtest_mimic.vtest_mimic.sweeps import weight_sweep


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', nargs='+', type=float, default=[0.1, 1.0, 10.0])
    parser.add_argument('--width', choices=['1-2', '1-4'], default='1-2')
    parser.add_argument('--block', choices=['cross-scale', 'same-input'], default='cross-scale',
                        help='the block whose mimic student is swept')
    parser.add_argument('--commit-to', help='also write the sweep\'s md/json into this folder')
    args, rest = parser.parse_known_args(argv)
    demo_args = parse_args(rest + ['--blocks', args.block, '--skip-speed'])
    return weight_sweep(demo_args, args.weights, width=args.width, block=args.block,
                        commit_to=args.commit_to)


if __name__ == '__main__':
    main()
