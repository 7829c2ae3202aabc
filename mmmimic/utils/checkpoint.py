"""The one way mmmimic reads a checkpoint's weights: load, unwrap, strip ``module.``, select.

Teacher loading, stage-2 initialisation, the tools' model/checkpoint checks and student export all
read checkpoints through these two functions, so they accept and refuse the same files with the
same messages. Files are read by mmengine's ``_load_checkpoint`` (local paths through mmmimic's
weights-only loader, see :mod:`mmmimic.compat.checkpoint`).
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Mapping, Optional

import torch
from mmengine.runner.checkpoint import _load_checkpoint
from torch import Tensor

#: Key prefix of the student's entries in a ``FeatureMimicDistiller`` checkpoint.
STUDENT_PREFIX = 'student.'
# mmengine's default ``revise_keys`` of ``load_checkpoint``: DDP's wrapper prefix.
DDP_PREFIX = 'module.'


#: Environment switch (set by ``--unchecked-weights`` of the train/test tools) that skips
#: :func:`check_weight_values`.
UNCHECKED_WEIGHTS_ENV = 'MMMIMIC_UNCHECKED_WEIGHTS'


def check_weight_values(state: Mapping[str, Any], filename: str) -> None:
    """Refuse weights that would load without a word and give a wrong model.

    mmengine copies what it can and only warns: a ``meta``-device tensor (no data) or a sparse
    tensor of the right shape leaves the layer randomly initialised, and NaN/inf weights score
    as a broken model. Each is refused here, naming the file and the key.
    ``MMMIMIC_UNCHECKED_WEIGHTS=1`` (``--unchecked-weights``) skips the check.

    Raises:
        ValueError: names ``filename``, the key and what is wrong with it.
    """
    if os.environ.get(UNCHECKED_WEIGHTS_ENV, '') not in ('', '0'):
        return
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        problem = None
        if value.is_meta:
            problem = 'is a meta-device tensor (a shape without data)'
        elif value.layout != torch.strided:
            problem = f'is a {value.layout} tensor, not a dense one'
        elif (value.is_floating_point() or value.is_complex()) and \
                not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            problem = f'holds {bad} non-finite values (NaN or inf) of {value.numel()}'
        if problem:
            raise ValueError(
                f'checkpoint {filename}: weight {key!r} {problem}; loading it would leave a '
                f'broken layer. If this is intended, pass --unchecked-weights (or set '
                f'{UNCHECKED_WEIGHTS_ENV}=1).')


def read_checkpoint(filename: str, what: str = 'checkpoint', map_location: str = 'cpu') -> Any:
    """Load ``filename`` (a local path or an mmengine URL scheme).

    Args:
        filename: the checkpoint.
        what: what the file is for, used in the not-found message (e.g. ``'teacher checkpoint'``).
        map_location: where to load tensors.

    Raises:
        FileNotFoundError: a local path that does not exist (the message names ``what``).
    """
    if filename is None:
        raise ValueError(f'no {what} given')
    if '://' not in filename and not osp.isfile(osp.expanduser(filename)):
        raise FileNotFoundError(f'{what} not found: {filename}')
    return _load_checkpoint(filename, map_location=map_location)


def extract_state_dict(ckpt: Any,
                       filename: str,
                       prefix: Optional[str] = None,
                       require_prefix: bool = False) -> 'OrderedDict[str, Tensor]':
    """The weights in a loaded checkpoint, ``module.`` stripped, optionally one prefix selected.

    Args:
        ckpt: what :func:`read_checkpoint` returned (a dict with ``state_dict``, or a raw state
            dict).
        filename: the file it came from (for messages).
        prefix: if given and some key starts with it, keep only those entries, prefix removed
            (``STUDENT_PREFIX`` turns a distiller checkpoint into the student's weights).
        require_prefix: refuse a checkpoint without ``prefix`` entries instead of returning it
            whole.

    Raises:
        ValueError: ``ckpt`` holds no state dict (names the file and what it holds), or a
            meta-device, sparse or non-finite weight (:func:`check_weight_values`).
        KeyError: ``require_prefix`` and no key has ``prefix``.
    """
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f'{filename} holds no state_dict (found {type(state).__name__})')
    state = OrderedDict(
        (k[len(DDP_PREFIX):] if k.startswith(DDP_PREFIX) else k, v) for k, v in state.items())
    check_weight_values(state, filename)
    if prefix is not None:
        selected = OrderedDict(
            (k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
        if selected:
            return selected
        if require_prefix:
            raise KeyError(f'no "{prefix}" entries in {filename}: is it a FeatureMimicDistiller '
                           'checkpoint?')
    return state


def load_state_dict(filename: str,
                    what: str = 'checkpoint',
                    prefix: Optional[str] = None,
                    require_prefix: bool = False,
                    map_location: str = 'cpu') -> 'OrderedDict[str, Tensor]':
    """:func:`read_checkpoint` then :func:`extract_state_dict` (see both)."""
    return extract_state_dict(
        read_checkpoint(filename, what, map_location), filename, prefix, require_prefix)
