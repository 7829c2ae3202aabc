"""The numpy and opencv pins agree with each other, with CI and with the installed environment.

tools/install.sh installs the default numpy of requirements/constraints.txt into a fresh
environment and keeps an installed numpy that lies in the range of requirements/runtime.txt;
.ci/run reruns the numpy-sensitive tests under the other numpy major.
"""
import importlib.metadata as metadata
import os.path as osp
import re

import cv2
import numpy as np
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _requirements(name):
    """``{package: Requirement}`` of a requirements file (comments and ``-r`` lines dropped)."""
    reqs = {}
    with open(osp.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                req = Requirement(line)
                reqs[req.name] = req
    return reqs


def _pinned(req):
    spec, = req.specifier
    assert spec.operator == '==', f'{req}: expected an exact pin'
    return Version(spec.version)


def test_default_numpy_lies_in_the_supported_range():
    supported = _requirements('runtime.txt')['numpy'].specifier
    default = _pinned(_requirements('constraints.txt')['numpy'])
    assert default.major == 1 and supported.contains(default), (default, supported)
    assert supported.contains(np.__version__), \
        f'installed numpy {np.__version__} not in {supported}'


def test_ci_other_numpy_versions_lie_in_the_supported_range():
    supported = _requirements('runtime.txt')['numpy'].specifier
    with open(osp.join(ROOT, '.ci', 'run')) as f:
        others = re.findall(r'CI_OTHER_NUMPY:-([\d.]+)', f.read())
    assert sorted(Version(v).major for v in others) == [1, 2], others
    for version in others:
        assert supported.contains(version), f'.ci/run: numpy {version} not in {supported}'


def test_both_opencv_distributions_are_pinned_to_the_same_4x():
    """mmengine requires plain opencv-python, which writes the same ``cv2`` package as the pinned
    opencv-python-headless; left free, pip picks opencv-python 5 (no HOG) beside numpy 2."""
    headless = _pinned(_requirements('runtime.txt')['opencv-python-headless'])
    plain = _pinned(_requirements('constraints.txt')['opencv-python'])
    assert headless == plain and headless.major == 4, (headless, plain)


def test_installed_cv2_is_the_pinned_opencv_with_hog():
    pinned = _pinned(_requirements('runtime.txt')['opencv-python-headless'])
    assert Version(cv2.__version__).release == pinned.release[:3], cv2.__version__
    assert hasattr(cv2, 'HOGDescriptor'), f'cv2 {cv2.__version__} at {cv2.__file__} lacks HOG'
    for dist in ('opencv-python', 'opencv-python-headless'):
        try:
            installed = Version(metadata.version(dist))
        except metadata.PackageNotFoundError:
            continue
        assert installed == pinned, f'{dist} {installed} installed, {pinned} pinned'
