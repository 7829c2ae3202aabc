"""Up-front checks of user input for the train/test tools: fail at once, name the culprit."""
import glob
import os.path as osp
from typing import Optional

import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint


def check_config_path(path: str) -> str:
    """Return ``path`` if it names an existing config file, else raise naming it."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    return path


def check_fresh_work_dir(work_dir: str, resume: bool) -> None:
    """Refuse to start a *new* run over the checkpoints of an earlier run in ``work_dir``.

    mmengine writes ``iter_N.pth`` / ``epoch_N.pth`` and ``last_checkpoint`` at fixed names, so a
    second fresh run in the same work dir silently overwrites what the first one trained.
    """
    if resume:
        return
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if found or osp.exists(osp.join(work_dir, 'last_checkpoint')):
        shown = ', '.join(osp.basename(f) for f in found[:4]) or 'last_checkpoint'
        raise FileExistsError(
            f'work dir {work_dir} already holds checkpoints of an earlier run ({shown}); a new '
            'run would overwrite them. Continue it with --resume, pick another --work-dir, or '
            'pass --overwrite to start over.')


def _strip_prefix(state_dict: dict) -> dict:
    if all(k.startswith('module.') for k in state_dict):
        return {k[len('module.'):]: v for k, v in state_dict.items()}
    return state_dict


def check_checkpoint_matches_model(model: nn.Module,
                                   filename: str,
                                   strict: bool = True,
                                   max_listed: int = 10) -> Optional[dict]:
    """Check that checkpoint ``filename`` was written for ``model`` before anything runs.

    Args:
        model: the built model (unwrapped).
        filename: local checkpoint path.
        strict: if True, any missing/unexpected key or shape mismatch is an error (testing,
            resuming). If False, only a checkpoint sharing no parameter with the model is an
            error (``load_from`` for fine-tuning legitimately differs in some heads).

    Returns:
        dict with ``missing``, ``unexpected`` and ``mismatched`` key lists.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    ckpt = _load_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{filename} holds no state_dict (found {type(ckpt).__name__})')
    state = _strip_prefix(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state)
                        if hasattr(state[k], 'shape') and state[k].shape != own[k].shape)
    report = dict(missing=missing, unexpected=unexpected, mismatched=mismatched)

    def listing(name, keys):
        more = f' ... (+{len(keys) - max_listed} more)' if len(keys) > max_listed else ''
        return f'\n  {name} ({len(keys)}): {keys[:max_listed]}{more}'

    shared = len(set(own) & set(state)) - len(mismatched)
    bad = (missing or unexpected or mismatched) if strict else shared == 0
    if bad:
        raise RuntimeError(
            f'checkpoint {filename} does not fit the model {type(model).__name__}'
            f' ({shared} of {len(own)} parameters match):' + listing('missing in checkpoint',
                                                                     missing) +
            listing('unexpected in checkpoint', unexpected) +
            listing('shape mismatch', mismatched))
    return report
