import os.path as osp

import pytest

from mmmimic.testing import make_tiny_coco

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> str:
    """A tiny COCO-format dataset on disk (train 16 / val 6 images, 128x96), shared by tests."""
    root = str(tmp_path_factory.mktemp('tiny_coco'))
    make_tiny_coco(root, num_images=16, seed=0, split='train')
    make_tiny_coco(root, num_images=6, seed=1, split='val')
    return root + '/'
