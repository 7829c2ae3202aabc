import os.path as osp

import pytest
import torch

from mmmimic.testing import load_tiny_config, make_tiny_coco

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


@pytest.fixture
def single_torch_thread():
    """Tiny models: one intra-op thread is ~3x faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: iterations of :func:`trained_tiny_teacher`
TINY_TEACHER_ITERS = 100


@pytest.fixture(scope='session')
def trained_tiny_teacher(tiny_coco, tmp_path_factory) -> str:
    """The tiny teacher RPN (mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py) trained 100
    iterations (SGD lr 0.02, seed 0, one thread): far better than chance on tiny_coco's 6 val images
    (proposal recall@10 at IoU 0.5: 53.3% against 13.3% for a randomly initialised network)."""
    from mmengine.runner import Runner
    work_dir = str(tmp_path_factory.mktemp('trained_tiny_teacher'))
    cfg = load_tiny_config(
        osp.join(REPO_ROOT, 'mmmimic/testing/configs/mimic/rpn_r18-w16_tiny.py'), tiny_coco,
        work_dir, **{
            'train_cfg.max_iters': TINY_TEACHER_ITERS, 'train_cfg.val_interval': 10**6,
            'default_hooks.checkpoint.interval': TINY_TEACHER_ITERS, 'param_scheduler': [],
            'default_hooks.logger.interval': 50, 'optim_wrapper.optimizer.lr': 0.02,
            'visualizer.name': 'vis_trained_tiny_teacher'})
    for key in ('val_evaluator', 'test_evaluator'):  # RPN configs score proposal recall
        cfg[key].pop('ann_file', None)
    cfg.randomness = dict(seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the numbers above are those of one thread
    try:
        Runner.from_cfg(cfg).train()
    finally:
        torch.set_num_threads(threads)
    return osp.join(work_dir, f'iter_{TINY_TEACHER_ITERS}.pth')
