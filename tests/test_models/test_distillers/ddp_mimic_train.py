"""Run by ``torchrun --nproc_per_node 2`` from test_mimic_ddp.py: a few mimic iterations under
MMEngine's distributed wrapper (gloo, CPU); rank 0 writes a JSON report."""
import argparse
import json
import os.path as osp

import torch
import torch.distributed as dist

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmimic.utils import setup_cpu_distributed
from test_mimic_runner import tiny_runner_cfg  # the test module beside this script


class RankRecorder(Hook):
    """On every rank: the local ``loss_mimic`` of each step, and the connector's gradients as
    the optimizer sees them (after DDP's all-reduce, before the step)."""

    def __init__(self):
        self.loss_mimic, self.connector_grads = [], []

    def before_train(self, runner):
        wrapper, connector = runner.optim_wrapper, runner.model.module.connector
        step = wrapper.step

        def recording_step(**kwargs):
            self.connector_grads.append(
                torch.cat([p.grad.detach().flatten().clone() for p in connector.parameters()]))
            return step(**kwargs)

        wrapper.step = recording_step

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.loss_mimic.append(float(outputs['loss_mimic']))


def _gather(tensor):
    gathered = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor)
    return gathered


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--work-dir')
    parser.add_argument('--data-root')
    parser.add_argument('--teacher-ckpt')
    parser.add_argument('--iters', type=int, default=4)
    args = parser.parse_args()
    data = dict(data_root=args.data_root, ann_file='annotations/train.json', img_prefix='train/')
    cfg = tiny_runner_cfg(args.work_dir, data, args.teacher_ckpt, max_iters=args.iters)
    cfg.launcher = 'pytorch'
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'),
                       mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                 find_unused_parameters=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=args.iters)
    # what tools/train.py does under torchrun: gloo, own process group, no CUDA device ids
    assert setup_cpu_distributed(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and cfg.model_wrapper_cfg.device_ids is None
    runner = Runner.from_cfg(cfg)
    distiller = runner.model.module
    recorder = RankRecorder()
    runner.register_hook(recorder)
    teacher_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    runner.train()

    teacher_same = all(
        torch.equal(v, teacher_before[k]) for k, v in distiller.teacher.state_dict().items())
    # the student's parameters must be identical on both ranks after synchronised updates
    flat = torch.cat([p.detach().flatten() for p in distiller.student.parameters()])
    gathered = _gather(flat)
    losses = _gather(torch.tensor(recorder.loss_mimic, dtype=torch.float64))
    grads = _gather(torch.stack(recorder.connector_grads))
    if dist.get_rank() == 0:
        mimic = runner.message_hub.get_scalar('train/loss_mimic').data[0]
        report = dict(
            world_size=dist.get_world_size(),
            wrapper=type(runner.model).__name__,
            iters=runner.iter,
            loss_mimic=[float(x) for x in mimic],
            teacher_unchanged=teacher_same,
            ranks_in_sync=all(torch.equal(g, gathered[0]) for g in gathered),
            teacher_in_reducer=any(p.requires_grad for p in distiller.teacher.parameters()),
            loss_mimic_per_rank=[r.tolist() for r in losses],
            connector_grad_steps=[len(g) for g in grads],
            connector_grad_norms=[[float(x) for x in g.norm(dim=1)] for g in grads],
            connector_grads_equal=all(torch.equal(g, grads[0]) for g in grads))
        with open(osp.join(args.work_dir, 'ddp_report.json'), 'w') as f:
            json.dump(report, f)
    # leave no gloo threads running at interpreter exit: under load their teardown aborted the
    # process ("terminate called without an active exception", exit -6) after training passed
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
