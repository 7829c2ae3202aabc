"""Distributed set-up that also works on CPU-only machines (torchrun + gloo)."""
import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> bool:
    """Make ``cfg`` runnable under ``--launcher pytorch`` on a machine without CUDA.

    mmengine 0.10.7 assumes GPUs in two places: ``init_dist`` calls ``torch.cuda.set_device``
    whatever the backend (an error on CPU-only torch), and the default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``. On a CPU-only machine this switches to gloo, initialises the
    process group itself (mmengine then skips ``init_dist``) and wraps without device ids.
    Nothing changes when CUDA is available or the launcher is ``none``.

    Returns:
        True if the CPU set-up was applied.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    return True
