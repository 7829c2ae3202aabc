"""Run a command-line tool's ``__main__`` in this process (tests: no interpreter start-up)."""
import runpy
import sys


def run_tool(path: str, *argv: str) -> None:
    """Run the script at ``path`` as ``__main__`` with ``argv``; ``sys.argv`` is restored after."""
    saved = sys.argv
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name='__main__')
    finally:
        sys.argv = saved
