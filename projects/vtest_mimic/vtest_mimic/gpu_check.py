"""The prepared check for a lent GPU machine (``tools/gpu_check.py``): the refusal without
CUDA, the CUDA training smoke, the timed steps and their record (``gpu_check.{json,md}``)."""
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch

NO_GPU = ('gpu_check: no CUDA device (torch.cuda.is_available() is False, torch {}); '
          'run it on a machine with a GPU')


def cuda_smoke(iters: int = 2, device: str = 'cuda') -> Dict[str, float]:
    """Train the tiny mimic distiller for ``iters`` iterations on ``device``; returns the last
    iteration's losses.

    Raises:
        RuntimeError: a loss is not finite (names it)."""
    from mmmimic.testing.distill import build_distiller, make_batch, make_teacher_ckpt
    with tempfile.TemporaryDirectory() as tmp:
        model = build_distiller(make_teacher_ckpt(osp.join(tmp, 'teacher.pth')),
                                init_weights=True).to(device)
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model.train()
    last: Dict[str, float] = {}
    for step in range(iters):
        inputs, samples = make_batch(seed=step)
        losses = model.loss(inputs.to(device), [s.to(device) for s in samples])
        total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
        last = {k: float(sum(v) if isinstance(v, list) else v) for k, v in losses.items()}
        bad = [k for k, v in last.items() if not math.isfinite(v)]
        if bad:
            raise RuntimeError(f'{device} smoke, iteration {step + 1}: {", ".join(bad)} not finite')
        optim.zero_grad()
        total.backward()
        optim.step()
    if device.startswith('cuda'):
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


def run_checks(out: str, study_out: Optional[str] = None, skip_tests: bool = False,
               skip_study: bool = False) -> int:
    """Run the check's steps (the test suite, the CUDA smoke, the ``--quick`` study on
    ``--device cuda`` into ``study_out``, default ``<out>/quick_cuda``), recording each into
    ``out``; returns the exit status: 2 without CUDA (one line on stderr, nothing run or
    written), 1 when a step failed, else 0."""
    if not torch.cuda.is_available():
        print(NO_GPU.format(torch.__version__), file=sys.stderr)
        return 2
    record = dict(gpu=torch.cuda.get_device_name(0), torch=torch.__version__,
                  cuda=torch.version.cuda, started=time.strftime('%Y-%m-%d %H:%M:%S',
                                                                 time.gmtime()), steps=[])
    write_record(record, out)
    failed = []
    if not skip_tests:
        if run_step('test suite', [sys.executable, '-m', 'pytest', 'tests', '-x', '-q', '-p',
                                   'no:cacheprovider'], record, out):
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
    write_record(record, out)
    if not skip_study:
        study_out = study_out or osp.join(out, 'quick_cuda')
        if run_step('--quick study', [sys.executable, '-m', 'projects.vtest_mimic.tools.run',
                                      '--quick', '--device', 'cuda', '--out', study_out],
                    record, out):
            failed.append('--quick study')
    print(f'gpu_check: {"failed: " + ", ".join(failed) if failed else "all steps passed"}; '
          f'timings in {osp.join(out, "gpu_check.md")}', flush=True)
    return 1 if failed else 0
