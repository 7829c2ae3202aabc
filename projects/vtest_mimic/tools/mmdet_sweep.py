"""Choose the vtest study's mmdet-block settings (pyramid level rule, mimic weight) on the
VALIDATION split.

For one student of the mmdet block (``--student frcnn``: the half-input Faster R-CNN R-18-FPN;
``retina``: the half-input RetinaNet), per seed: the student from scratch (the run's own runs,
reused by it), the mmdet block's teacher (trained once, its checkpoint chosen on validation),
then the pyramid-mimic student at every level rule (``scale``: mmdet's RoI-extractor rule;
``all``: every pair; ``0``: the finest pair) at lambda1 ``--first-weight``, then at every
``--weights`` value with the chosen rule. Every model is scored on every validation frame
(Caltech Reasonable MR-2); the rule: the lowest mean over the seeds. The test split is never
read.

    python -m projects.vtest_mimic.tools.mmdet_sweep --student frcnn --seeds 0 1
    python -m projects.vtest_mimic.tools.mmdet_sweep --student retina --seeds 0 1

Writes ``<out>/mmdet_sweep/sweep_<student>.{md,json}`` and, with ``--commit-to``, a copy to
commit (the choice goes into the block's configs and ``configs/presets/default.py``). Every
option of the run (``--out``, ``--seeds``, ``--cfg-options mmdet_iters=...``) is accepted.
"""
import argparse
from typing import Dict, Optional, Sequence

from projects.vtest_mimic.vtest_mimic.options import parse_args
from projects.vtest_mimic.vtest_mimic.sweeps import mmdet_sweep


def _rule(text: str):
    return int(text) if text.lstrip('-').isdigit() else text


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--student', choices=['frcnn', 'retina'], required=True)
    parser.add_argument('--rules', nargs='+', type=_rule, default=['scale', 'all', 0],
                        help='level rules: scale, all or a pair index')
    parser.add_argument('--first-weight', type=float, default=1.0,
                        help='lambda1 of the rule comparison')
    parser.add_argument('--weights', nargs='+', type=float, default=[0.1, 1.0, 10.0],
                        help='lambda1 values compared at the chosen rule')
    parser.add_argument('--commit-to', help='also write the sweep\'s md/json into this folder')
    args, rest = parser.parse_known_args(argv)
    demo_args = parse_args(rest + ['--blocks', 'mmdet', '--skip-speed'])
    return mmdet_sweep(demo_args, args.student, args.rules, args.weights, args.first_weight,
                       commit_to=args.commit_to)


if __name__ == '__main__':
    main()
