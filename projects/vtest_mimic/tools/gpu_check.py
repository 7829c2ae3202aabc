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
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import torch

NO_GPU = ('gpu_check: no CUDA device (torch.cuda.is_available() is False, torch {}); '
          'run it on a machine with a GPU')


def cuda_smoke(iters: int = 2) -> Dict[str, float]:
    """Train the tiny mimic distiller for ``iters`` iterations on ``cuda``; returns the last
    iteration's losses.

    Raises:
        RuntimeError: a loss is not finite (names it)."""
    from mmmimic.testing.distill import build_distiller, make_batch, make_teacher_ckpt
    with tempfile.TemporaryDirectory() as tmp:
        model = build_distiller(make_teacher_ckpt(osp.join(tmp, 'teacher.pth')),
                                init_weights=True).to('cuda')
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model.train()
    last: Dict[str, float] = {}
    for step in range(iters):
        inputs, samples = make_batch(seed=step)
        losses = model.loss(inputs.cuda(), [s.to('cuda') for s in samples])
        total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
        last = {k: float(sum(v) if isinstance(v, list) else v) for k, v in losses.items()}
        bad = [k for k, v in last.items() if not math.isfinite(v)]
        if bad:
            raise RuntimeError(f'cuda smoke, iteration {step + 1}: {", ".join(bad)} not finite')
        optim.zero_grad()
        total.backward()
        optim.step()
    torch.cuda.synchronize()
    return last


def write_record(record: Dict, out: str) -> None:
    """``gpu_check.json`` and ``gpu_check.md`` of ``record`` into ``out``."""
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'gpu_check.json'), 'w') as f:
        json.dump(record, f, indent=1)
    lines = [f'GPU check on {record["gpu"]} (torch {record["torch"]}, CUDA '
             f'{record["cuda"]}), started {record["started"]} UTC', '',
             '| step | command | exit status | wall time |', '|---|---|---|---|']
    for step in record['steps']:
        lines.append(f'| {step["name"]} | `{step["command"]}` | {step["rc"]} | '
                     f'{step["seconds"] / 60:.1f} min |')
    with open(osp.join(out, 'gpu_check.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def run_step(name: str, command: List[str], record: Dict, out: str) -> int:
    """Run ``command`` (its output passes through), record its exit status and wall time."""
    print(f'gpu_check: {name}: {" ".join(command)}', flush=True)
    t0 = time.time()
    rc = subprocess.call(command)
    record['steps'].append(dict(name=name, command=' '.join(command), rc=rc,
                                seconds=time.time() - t0))
    write_record(record, out)
    return rc


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='where gpu_check.{json,md} go')
    parser.add_argument('--study-out', help='the --quick run\'s output folder '
                        '(default: <out>/quick_cuda)')
    parser.add_argument('--skip-tests', action='store_true', help='leave out the test suite')
    parser.add_argument('--skip-study', action='store_true', help='leave out the --quick run')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU.format(torch.__version__), file=sys.stderr)
        return 2
    record = dict(gpu=torch.cuda.get_device_name(0), torch=torch.__version__,
                  cuda=torch.version.cuda, started=time.strftime('%Y-%m-%d %H:%M:%S',
                                                                 time.gmtime()), steps=[])
    write_record(record, args.out)
    failed = []
    if not args.skip_tests:
        if run_step('test suite', [sys.executable, '-m', 'pytest', 'tests', '-x', '-q', '-p',
                                   'no:cacheprovider'], record, args.out):
            failed.append('test suite')
    t0 = time.time()
    try:
        losses = cuda_smoke()
        rc = 0
        print(f'gpu_check: cuda smoke: 2 iterations, losses {losses}', flush=True)
    except Exception as err:  # recorded, and the check goes on to the study run
        print(f'gpu_check: cuda smoke failed: {err!r}', flush=True)
        rc = 1
        failed.append('cuda smoke')
    record['steps'].append(dict(name='cuda smoke', command='cuda_smoke(iters=2)', rc=rc,
                                seconds=time.time() - t0))
    write_record(record, args.out)
    if not args.skip_study:
        study_out = args.study_out or osp.join(args.out, 'quick_cuda')
        if run_step('--quick study', [sys.executable, '-m', 'projects.vtest_mimic.tools.run',
                                      '--quick', '--device', 'cuda', '--out', study_out],
                    record, args.out):
            failed.append('--quick study')
    print(f'gpu_check: {"failed: " + ", ".join(failed) if failed else "all steps passed"}; '
          f'timings in {osp.join(args.out, "gpu_check.md")}', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
