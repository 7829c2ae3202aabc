"""Exact resume: carry the RNG streams that mmengine's checkpoints leave out."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the random number generator states in every checkpoint and restore them on resume.

    mmengine 0.10.7 checkpoints hold the model, optimizer, schedulers, message hub and the
    iteration counter, but not the RNG states; a resumed run re-seeds and so draws different
    random numbers than the uninterrupted run would have (RPN/RoI samplers use ``torch``
    randomness), so the next losses differ.

    What is restored, and when:

    * ``torch`` (CPU and, when present, CUDA) and Python ``random``: restored just before the
      first training iteration after the resume, i.e. after the dataloader iterator was created
      (creating it draws a base seed from torch's global generator) and after the loop has
      skipped the batches already trained on.
    * ``numpy`` is *not* restored: the train loop replays the skipped batches through the data
      pipeline, which advances numpy's global state exactly as the interrupted run did (the
      pipeline is the only numpy consumer after seeding), so restoring it would double-count.

    With ``num_workers=0`` and a fixed seed, the iteration after a resume is bitwise identical to
    the uninterrupted run (tested in ``tests/test_engine/test_resume.py``).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            torch=torch.get_rng_state(),
            python=random.getstate(),
            numpy=np.random.get_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state['torch'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available() and \
                len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])
