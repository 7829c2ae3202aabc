"""Up-front checks of user input for the train/test tools: fail at once, name the culprit."""
import contextlib
import glob
import os.path as osp
from typing import Callable, Iterator, Optional

import torch.nn as nn
from mmengine.config import Config

from mmmimic.fileio import atomic_write_bytes, check_output_path  # noqa: F401 (re-exported)
from .checkpoint import load_state_dict


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


def check_config_dump(cfg: Config) -> None:
    """Refuse a fresh run whose config dump would replace a different file in the work dir.

    mmengine's Runner writes ``work_dir/<config file name>`` when it starts. A file of that name
    that holds exactly the text about to be written (a re-run of the same config) is no loss; any
    other file there (a user's config, another run's) is refused unless ``--overwrite``.
    """
    dump = config_dump_path(cfg)
    if not dump or not osp.lexists(dump):
        return
    if osp.isfile(dump) and not osp.islink(dump):
        with open(dump, encoding='utf-8', errors='replace') as f:
            if f.read() == cfg.pretty_text:
                return
    raise FileExistsError(
        f'{dump} exists and differs from the config this run would write there (mmengine dumps '
        'the config into the work dir at start); pick another --work-dir, or pass --overwrite '
        'to replace it.')


def config_dump_path(cfg: Config) -> Optional[str]:
    """Where mmengine's Runner dumps ``cfg`` when it starts (``work_dir/<config file name>``)."""
    return osp.join(cfg.work_dir, osp.basename(cfg.filename)) if cfg.filename else None


@contextlib.contextmanager
def restore_on_failure(path: Optional[str], started: Callable[[], bool]) -> Iterator[None]:
    """Put ``path`` back as it was if the block fails before ``started()`` says training began.

    mmengine's Runner overwrites the config dump in the work dir when it is built, before any
    check of the run: a ``--resume`` without the run's ``--teacher`` replaced a distiller run's
    config (the one to resume from) with the student's, then failed. A run that is refused or
    fails before its first iteration now leaves the dump as it found it.
    """
    saved = None
    if path and osp.isfile(path) and not osp.islink(path):
        with open(path, 'rb') as f:
            saved = f.read()
    try:
        yield
    except BaseException:
        if saved is not None and not started():
            atomic_write_bytes(path, saved, overwrite=True, what='config dump')
        raise


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` without a path continues from, found in ``work_dir``.

    mmengine's ``last_checkpoint`` file holds an absolute path. In a copied or moved work dir
    it still names the *original* run's file, and mmengine would silently resume from there. This
    resolves it inside ``work_dir``: the named file when it lies in ``work_dir``, else the file of
    the same name in ``work_dir``.

    Returns:
        the checkpoint path, or None when ``work_dir`` holds no ``last_checkpoint`` (a fresh run).

    Raises:
        FileNotFoundError: ``last_checkpoint`` names a file found neither where it says nor in
            ``work_dir``.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        named = f.read().strip()
    if osp.isfile(named) and osp.samefile(osp.dirname(osp.abspath(named)), work_dir):
        return named
    local = osp.join(work_dir, osp.basename(named))
    if osp.isfile(local):
        return local
    raise FileNotFoundError(
        f'{marker} names {named!r}, which is not in this work dir and {local} does not exist; '
        'pass the checkpoint to resume from explicitly: --resume PATH')


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
    state = load_state_dict(filename, what='checkpoint file')
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
