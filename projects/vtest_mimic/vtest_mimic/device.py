"""Where the vtest study's stages run: the ``--device`` flag (``auto``, ``cpu``, ``cuda``,
``cuda:N``) resolved once, and the context every mmengine ``Runner`` of a stage runs in.

mmengine's ``Runner`` moves the model to ``mmengine.device.get_device()`` (``cuda`` whenever
``torch.cuda.is_available()``); :func:`use_device` points that choice at the resolved device for
the duration of one stage, so ``--device cpu`` keeps a CUDA machine's stages on the CPU. The
device is not part of a stage's config, so it is not part of a stage's stamp: a model trained on
one device is reused on the other.
"""
import contextlib
import re
from typing import Iterator, Optional

import torch

#: the values ``--device`` accepts (``cuda:N`` too)
DEVICE_CHOICES = ('auto', 'cpu', 'cuda')


def resolve_device(name: Optional[str] = 'auto') -> str:
    """``auto`` (or None) -> ``cuda`` if ``torch.cuda.is_available()`` else ``cpu``; ``cpu``,
    ``cuda`` and ``cuda:N`` are checked against this machine.

    Raises:
        ValueError: an unknown name, CUDA asked for where there is none, or ``cuda:N`` past the
            last GPU (one line naming ``--device``).
    """
    name = (name or 'auto').strip().lower()
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cpu':
        return 'cpu'
    match = re.fullmatch(r'cuda(?::(\d+))?', name)
    if match is None:
        raise ValueError(f'--device {name}: not one of auto, cpu, cuda, cuda:N')
    if not torch.cuda.is_available():
        raise ValueError(f'--device {name}: torch.cuda.is_available() is False on this machine '
                         '(torch ' + torch.__version__ + '); use --device cpu or auto')
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise ValueError(f'--device {name}: this machine has {torch.cuda.device_count()} '
                         'CUDA device(s)')
    return name


@contextlib.contextmanager
def use_device(device: str) -> Iterator[str]:
    """Run the enclosed mmengine ``Runner`` on ``device`` (a :func:`resolve_device` result):
    ``mmengine.device.get_device()`` answers ``cpu`` or ``cuda`` inside, and ``cuda:N`` makes
    GPU N the current one; both are restored on exit."""
    import mmengine.device.utils as device_utils
    before = device_utils.DEVICE
    index = int(device.split(':')[1]) if device.startswith('cuda:') else None
    before_index = torch.cuda.current_device() if index is not None else None
    device_utils.DEVICE = 'cuda' if device.startswith('cuda') else 'cpu'
    try:
        if index is not None:
            torch.cuda.set_device(index)
        yield device
    finally:
        device_utils.DEVICE = before
        if before_index is not None:
            torch.cuda.set_device(before_index)
