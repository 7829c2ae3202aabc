"""Writing output files: never over an existing file without ``overwrite``, never half-written.

Every mmmimic writer of a user-facing file goes through :func:`atomic_output` (or its two
shortcuts :func:`atomic_write_bytes` / :func:`atomic_write_text`):

- the target is checked first (:func:`check_output_path`): an existing file is refused unless
  ``overwrite``, a folder is refused, the parent folder must exist;
- the data goes into a temporary file created exclusively (``O_CREAT | O_EXCL``, a fresh random
  name, so a planted file or symlink is never opened or followed) in the target's own folder;
- the temporary file is renamed onto the target only when writing finished. Without
  ``overwrite`` the rename is a hard link that fails if the target appeared meanwhile; with it,
  ``os.replace`` replaces the directory entry (a symlink at the target is replaced, its target
  is not written);
- on any error, Ctrl-C (``KeyboardInterrupt``) included, the temporary file is removed: no
  ``.part`` file is left behind and the target is untouched.

This module imports only the standard library, so the torch-free Caltech scorer can use it.
"""
import contextlib
import errno
import os
import os.path as osp
import tempfile
from typing import Iterator


def check_output_path(path: str, overwrite: bool, what: str = 'output file') -> str:
    """Refuse to overwrite an existing ``path`` unless ``overwrite``; its folder must exist.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists (a dangling symlink included) and ``overwrite`` is
            False.
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: the folder ``path`` would be written into does not exist.
    """
    if osp.isdir(path):
        raise IsADirectoryError(f'{what} {path} is a folder; give a file name')
    if osp.lexists(path) and not overwrite:
        raise FileExistsError(f'{what} {path} already exists; pass --overwrite to replace it')
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise FileNotFoundError(f'the folder of {what} {path} does not exist: {folder}')
    return path


@contextlib.contextmanager
def atomic_output(path: str, overwrite: bool = False,
                  what: str = 'output file') -> Iterator[str]:
    """Yield a fresh temporary path to write; it becomes ``path`` when the block ends cleanly.

    Args:
        path: the file to produce.
        overwrite: replace an existing ``path``.
        what: what the file is, for the messages (e.g. ``'--out file'``).

    Raises:
        FileExistsError / IsADirectoryError / FileNotFoundError: see :func:`check_output_path`
            (also when ``path`` appears while the block runs).
        OSError: writing failed; the message names ``path`` and says when the disk is full.
    """
    check_output_path(path, overwrite, what)
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.part', dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file gets what open() would give
    try:
        try:
            yield tmp
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise OSError(e.errno, f'disk full while writing {what} {path}') from e
            raise
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared since the check: nothing clobbered
            except FileExistsError:
                raise FileExistsError(f'{what} {path} appeared while it was being written; '
                                      'pass --overwrite to replace it') from None
            except OSError as e:  # a file system without hard links: check, then rename
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                check_output_path(path, overwrite, what)
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(path: str, data: bytes, overwrite: bool = False,
                       what: str = 'output file') -> str:
    """Write ``data`` to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path, overwrite, what) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)
    return path


def atomic_write_text(path: str, text: str, overwrite: bool = False,
                      what: str = 'output file') -> str:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`; returns ``path``."""
    return atomic_write_bytes(path, text.encode('utf-8'), overwrite, what)
