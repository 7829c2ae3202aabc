"""The prepared check for a lent GPU machine: the test suite, a CUDA training smoke and a
``--quick`` study run on ``--device cuda``, each timed.

    python -m projects.vtest_mimic.tools.gpu_check --out work_dirs/gpu_check

Without CUDA (``torch.cuda.is_available()`` False) it exits with status 2 and one line saying
so, before doing anything else. Otherwise, in this order:

1. ``python -m pytest tests -x -q -p no:cacheprovider`` (every mmengine ``Runner`` of the suite
   picks CUDA by itself when it is present; the suite has no other device switch);
2. the smoke: the tiny mimic distiller of ``mmmimic.testing.distill`` trained for 2 iterations
   on ``cuda``, every loss finite;
3. ``python -m projects.vtest_mimic.tools.run --quick --device cuda --out <study-out>``.

Writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out`` (the GPU, torch, every step's
wall seconds and exit status; rewritten after each step, so a cut-off check keeps what it
measured). Exits 1 when a step failed. ``--skip-tests`` / ``--skip-study`` leave a step out.
"""
import argparse
import sys
from typing import Optional, Sequence

from projects.vtest_mimic.vtest_mimic.gpu_check import run_checks


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='where gpu_check.{json,md} go')
    parser.add_argument('--study-out', help='the --quick run\'s output folder '
                        '(default: <out>/quick_cuda)')
    parser.add_argument('--skip-tests', action='store_true', help='leave out the test suite')
    parser.add_argument('--skip-study', action='store_true', help='leave out the --quick run')
    args = parser.parse_args(argv)
    return run_checks(args.out, args.study_out, args.skip_tests, args.skip_study)


if __name__ == '__main__':
    sys.exit(main())
