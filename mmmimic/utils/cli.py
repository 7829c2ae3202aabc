"""Small parsers and the error reporting shared by the command-line tools."""
import argparse
import os
import sys
from typing import Any, Callable, Optional, Sequence, Tuple


def parse_shape(shape: str) -> Tuple[int, int]:
    """'1000x1500' -> (1000, 1500); a clear error for anything else."""
    try:
        h, w = (int(v) for v in shape.lower().split('x'))
    except ValueError as e:
        raise ValueError(f'--shapes: expected HxW such as 1000x1500, got {shape!r}') from e
    return h, w


#: Environment switch that shows the full traceback of a refusal (as ``--debug`` does).
DEBUG_ENV = 'MMMIMIC_DEBUG'


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The flags every model-loading tool shares: ``--debug`` and ``--unchecked-weights``."""
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error (default: one line)')
    parser.add_argument(
        '--unchecked-weights', action='store_true',
        help='load weights even when some are NaN/inf, meta-device or sparse (refused by '
        'default, naming the key)')


def apply_common_args(args: argparse.Namespace) -> None:
    """Act on :func:`add_common_args`' flags (``--unchecked-weights`` reaches every loader
    through ``MMMIMIC_UNCHECKED_WEIGHTS``)."""
    from .checkpoint import UNCHECKED_WEIGHTS_ENV
    if args.unchecked_weights:
        os.environ[UNCHECKED_WEIGHTS_ENV] = '1'


def run_main(main: Callable[[], Any], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main``; an error ends it with one line, not a traceback.

    The tools' checks refuse bad input with messages that name the file, key or flag at fault
    and the fix; a traceback around them hides that line. ``--debug`` on the command line (or
    ``MMMIMIC_DEBUG=1``) lets the exception through with its traceback. Ctrl-C is never caught.

    Returns:
        0, or 1 after printing ``error: <message>`` (the exception's type too when its message
        is empty) to stderr.
    """
    argv = sys.argv[1:] if argv is None else argv
    if '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0'):
        main()
        return 0
    try:
        main()
    except Exception as e:  # noqa: B902  (every error becomes one line; --debug shows it whole)
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f'error: {message or type(e).__name__} ({type(e).__name__}; --debug shows the '
              'traceback)', file=sys.stderr)
        return 1
    return 0
