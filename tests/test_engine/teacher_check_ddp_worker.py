"""Run by test_teacher_check_hook.py, once as a plain process and once under
``torchrun --nproc_per_node 2`` (gloo, CPU): the teacher check of a tiny mimic run through the
Runner's ``train()`` (one iteration); every rank writes its verdict to a JSON file."""
import argparse
import json
import os
import os.path as osp

import torch

from mmengine.dist import get_rank, get_world_size
from mmengine.runner import Runner

from mmmimic.testing.teacher_check import check_cfg, the_hook
from mmmimic.utils import setup_cpu_distributed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--work-dir')
    parser.add_argument('--data-root')
    parser.add_argument('--teacher-ckpt')
    parser.add_argument('--num-images', type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = check_cfg(args.work_dir, args.data_root, args.teacher_ckpt, num_images=args.num_images)
    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        cfg.launcher = 'pytorch'
        cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'),
                           mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                     find_unused_parameters=False)
        assert setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    hook = the_hook(runner)
    runner.train()
    report = dict(world_size=get_world_size(), wrapper=type(runner.model).__name__,
                  iters=runner.iter, result=hook.result)
    with open(osp.join(args.work_dir, f'teacher_check_rank{get_rank()}.json'), 'w') as f:
        json.dump(report, f)
    if torch.distributed.is_initialized():  # no gloo threads left running at interpreter exit
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
