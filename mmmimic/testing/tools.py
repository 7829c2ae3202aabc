"""Run a command-line tool's ``__main__`` in this process (tests: no interpreter start-up)."""
import os
import runpy
import sys

from mmmimic.utils.cli import DEBUG_ENV


def run_tool(path: str, *argv: str) -> None:
    """Run the script at ``path`` as ``__main__`` with ``argv``; ``sys.argv`` is restored after.

    ``MMMIMIC_DEBUG=1`` is set while it runs, so an error reaches the caller as the exception
    itself rather than as a one-line message and ``SystemExit(1)``
    (:func:`mmmimic.utils.run_main`).
    """
    saved, debug = sys.argv, os.environ.get(DEBUG_ENV)
    sys.argv = [path, *argv]
    os.environ[DEBUG_ENV] = '1'
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as e:  # a tool's sys.exit(0) is success, not an error of the caller's
        if e.code not in (0, None):
            raise
    finally:
        sys.argv = saved
        if debug is None:
            del os.environ[DEBUG_ENV]
        else:
            os.environ[DEBUG_ENV] = debug


def checkout_env(**extra: str) -> dict:
    """``os.environ`` for a child Python process that imports the same ``mmmimic`` as this one.

    The folder holding this ``mmmimic`` package goes first on the child's ``PYTHONPATH`` (a
    source checkout imported without installing it, or a second checkout beside an editable
    install); ``extra`` adds or replaces variables.
    """
    import mmmimic
    root = os.path.dirname(os.path.dirname(os.path.abspath(mmmimic.__file__)))
    path = os.environ.get('PYTHONPATH')
    env = dict(os.environ, PYTHONPATH=root if not path else root + os.pathsep + path)
    env.update(extra)
    return env
