"""Resume from a checkpoint without trusting it: nothing in it is executed, its counters are sane.

mmengine 0.10.7's ``Runner.resume`` hands the checkpoint's ``meta['config']`` (a plain string,
which passes any weights-only loader) to ``Config.fromstring``, which *executes* it as Python: a
checkpoint would run its own code on ``--resume``. It also trusts ``meta['iter']`` (the train
loop skips that many batches, so ``10**12`` hangs the run) and reports a missing entry as a bare
``KeyError: 'epoch'``.

:func:`install_checked_resume` wraps ``Runner.resume``: the checkpoint it loads is first checked
by :func:`check_resume_checkpoint`, which drops ``meta['config']`` unread (the run's config is the
one given on the command line; mmengine only read a ``gpu_ids`` entry from it, which mmdet 3.x
configs do not set), and refuses, naming the file and the entry:

- ``meta``, ``meta['epoch']``, ``meta['iter']`` or ``message_hub`` missing or of the wrong type;
- an iteration or epoch counter outside the run's schedule (``max_iters`` / ``max_epochs``);
- RNG states (``rng_state``, written by :class:`~mmmimic.engine.RNGStateHook`) that do not fit
  the generators of this process;
- meta-device, sparse or non-finite weights (:func:`mmmimic.utils.check_weight_values`,
  through :func:`mmmimic.utils.extract_state_dict`).
"""
import random
from typing import Any

import numpy as np
import torch
from mmengine.runner import Runner

from mmmimic.utils.checkpoint import extract_state_dict


class ResumeCheckpointError(ValueError):
    """A checkpoint cannot be resumed from; the message names the file and the entry."""


def _int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_rng_state(state: Any, filename: str) -> None:
    def refuse(entry: str, why: str) -> None:
        raise ResumeCheckpointError(f'cannot resume from {filename}: rng_state[{entry!r}] {why}')

    if not isinstance(state, dict):
        refuse('', f'is a {type(state).__name__}, not a dict')
    if 'torch' in state:
        own = torch.get_rng_state()
        value = state['torch']
        if not (isinstance(value, torch.Tensor) and value.dtype == own.dtype
                and value.shape == own.shape):
            refuse('torch', f'is not a {tuple(own.shape)} {own.dtype} tensor '
                   f'(got {getattr(value, "shape", type(value).__name__)})')
    if 'cuda' in state:
        if not (isinstance(state['cuda'], (list, tuple))
                and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8
                        for t in state['cuda'])):
            refuse('cuda', 'is not a list of uint8 tensors')
    if 'python' in state:
        try:
            random.Random().setstate(state['python'])
        except (TypeError, ValueError, OverflowError) as e:
            refuse('python', f'is not a state of Python\'s random generator ({e})')
    if 'numpy' in state:
        try:
            np.random.RandomState().set_state(state['numpy'])
        except (TypeError, ValueError, OverflowError, KeyError, IndexError) as e:
            refuse('numpy', f'is not a state of numpy\'s random generator ({e})')


def check_resume_checkpoint(checkpoint: Any, filename: str, runner: Runner) -> dict:
    """Check a loaded checkpoint before ``runner`` resumes from it (see the module docstring).

    Returns:
        ``checkpoint``, with ``meta['config']`` removed.

    Raises:
        ResumeCheckpointError: names ``filename`` and the entry at fault.
        ValueError: a meta-device, sparse or non-finite weight.
    """
    def refuse(why: str) -> None:
        raise ResumeCheckpointError(f'cannot resume from {filename}: {why}')

    if not isinstance(checkpoint, dict):
        refuse(f'it holds a {type(checkpoint).__name__}, not a training checkpoint')
    meta = checkpoint.get('meta')
    if not isinstance(meta, dict):
        refuse('it has no meta dict: it is not a training checkpoint written by an mmengine '
               'Runner (a weights-only file? pass it as load_from to fine-tune from it)')
    meta.pop('config', None)  # never executed: the run's config comes from the command line
    for key in ('epoch', 'iter'):
        if key not in meta:
            refuse(f"meta has no '{key}' counter: it is not a training checkpoint written by an "
                   'mmengine Runner')
        if not _int(meta[key]) or meta[key] < 0:
            refuse(f"meta['{key}'] is {meta[key]!r}, not a counter (an int >= 0)")
    loop = runner.train_loop
    for key, limit in (('iter', getattr(loop, 'max_iters', None)),
                       ('epoch', getattr(loop, 'max_epochs', None))):
        if _int(limit) and meta[key] > limit:
            refuse(f"meta['{key}'] is {meta[key]}, beyond this run's schedule (max_{key}s = "
                   f'{limit}): the file was not written by this schedule, or was altered')
    if not isinstance(checkpoint.get('message_hub'), dict):
        refuse("it has no 'message_hub' state (the logged values and counters a Runner saves); "
               'is it a training checkpoint?')
    if 'rng_state' in checkpoint:
        _check_rng_state(checkpoint['rng_state'], filename)
    if 'state_dict' in checkpoint:
        extract_state_dict(checkpoint, filename)  # refuses meta-device, sparse, NaN weights
    return checkpoint


_ORIGINAL_RESUME = Runner.resume


def _checked_resume(self: Runner, filename: str, *args: Any, **kwargs: Any) -> None:
    load = self.load_checkpoint

    def checked_load(*load_args: Any, **load_kwargs: Any) -> dict:
        return check_resume_checkpoint(load(*load_args, **load_kwargs), filename, self)

    self.load_checkpoint = checked_load
    try:
        _ORIGINAL_RESUME(self, filename, *args, **kwargs)
    finally:
        del self.load_checkpoint


def install_checked_resume() -> None:
    """Make ``Runner.resume`` check its checkpoint first (idempotent)."""
    Runner.resume = _checked_resume
