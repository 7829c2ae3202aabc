# Copyright (c) mmmimic contributors. All rights reserved.
"""Locating OpenCV's sample video ``vtest.avi``: a given path, the installed ``opencv-doc``
file, the cache, or an ``apt-get download opencv-doc`` into the cache."""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import tarfile
import tempfile
from typing import Optional

VIDEO_NAME = 'vtest.avi'
DEB_PACKAGE = 'opencv-doc'
DEB_MEMBER = './usr/share/doc/opencv-doc/examples/data/vtest.avi'
SYSTEM_VIDEO = '/usr/share/doc/opencv-doc/examples/data/vtest.avi'


def default_cache_dir() -> str:
    """``$MMMIMIC_CACHE`` or ``~/.cache/mmmimic``."""
    return os.environ.get('MMMIMIC_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmmimic'))


def fetch_from_apt(cache_dir: str) -> str:
    """``apt-get download opencv-doc`` into ``cache_dir`` and unpack only ``vtest.avi``.

    Returns:
        Path of the unpacked video.

    Raises:
        RuntimeError: apt-get / dpkg-deb are missing or the download failed.
    """
    dst = osp.join(cache_dir, DEB_PACKAGE, VIDEO_NAME)
    if osp.isfile(dst):
        return dst
    for tool in ('apt-get', 'dpkg-deb'):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f'{VIDEO_NAME} not found and `{tool}` is not available (not Debian/Ubuntu?). '
                f'Get {VIDEO_NAME} from the OpenCV sources (samples/data/{VIDEO_NAME}) or the '
                f'`{DEB_PACKAGE}` package and pass --video PATH.')
    os.makedirs(osp.dirname(dst), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=osp.dirname(dst)) as tmp:
        print(f'downloading {DEB_PACKAGE} with apt-get (about 100 MB) into {tmp} ...')
        proc = subprocess.run(['apt-get', 'download', DEB_PACKAGE], cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        debs = [f for f in os.listdir(tmp) if f.endswith('.deb')]
        if proc.returncode != 0 or not debs:
            raise RuntimeError(
                f'`apt-get download {DEB_PACKAGE}` failed (exit {proc.returncode}):\n'
                f'{proc.stdout[-2000:]}\nRun `apt-get update` first, or pass --video PATH.')
        deb = osp.join(tmp, debs[0])
        # dpkg-deb complains about the pipe we close early: its stderr is not interesting.
        tar_proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        found = False
        with tarfile.open(fileobj=tar_proc.stdout, mode='r|*') as tf:
            for member in tf:
                if member.name == DEB_MEMBER and member.isfile():
                    src = tf.extractfile(member)
                    with open(dst + '.part', 'wb') as fh:
                        shutil.copyfileobj(src, fh)
                    found = True
                    break
        tar_proc.stdout.close()
        tar_proc.wait()
        if not found:
            raise RuntimeError(f'{debs[0]} does not contain {DEB_MEMBER}; pass --video PATH')
        os.replace(dst + '.part', dst)
    return dst


def locate_video(video: Optional[str], cache_dir: str, allow_download: bool = True) -> str:
    """Find ``vtest.avi``: ``video`` if given, else the installed ``opencv-doc`` file, else
    the cached copy, else download ``opencv-doc`` with apt-get (when allowed).

    Raises:
        FileNotFoundError: ``video`` does not exist, or nothing was found and downloading is
            not allowed.
    """
    if video:
        if not osp.isfile(video):
            raise FileNotFoundError(f'--video {video!r} does not exist')
        return video
    for cand in (SYSTEM_VIDEO, osp.join(cache_dir, DEB_PACKAGE, VIDEO_NAME)):
        if osp.isfile(cand):
            return cand
    if not allow_download:
        raise FileNotFoundError(
            f'{VIDEO_NAME} not found (looked at {SYSTEM_VIDEO} and the cache {cache_dir}); '
            f'install `{DEB_PACKAGE}`, pass --video PATH, or allow the apt-get download.')
    return fetch_from_apt(cache_dir)


def file_digest(path: str) -> str:
    """sha1 of a file's contents (hex, 16 chars)."""
    h = hashlib.sha1()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:16]
