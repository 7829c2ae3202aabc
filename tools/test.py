# mmmimic testing entry point: mmdet's tools/test.py flags, plus up-front input checks.
import argparse
import os
import os.path as osp
import sys
import warnings
from copy import deepcopy

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmmimic  # noqa: F401  (registers mmmimic modules; torch>=2.6 checkpoint loading)
from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmmimic.utils import (add_common_args, apply_common_args, check_checkpoint_matches_model,
                           check_config_path, check_output_path, run_main,
                           setup_cpu_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or an exported .onnx model')
    parser.add_argument('--work-dir', help='the directory to save the file containing '
                        'evaluation metrics')
    parser.add_argument('--out', type=str,
                        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved. '
                        'If specified, it will be automatically saved to the '
                        'work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override some settings in the used config, the key-value pair '
                        'in xxx=yyy format will be merged into config file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true')
    parser.add_argument('--overwrite', action='store_true',
                        help='allow --out to replace an existing file, and --work-dir to be '
                        'the folder of the given config (its dump replaces that config)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_common_args(parser)
    args = parser.parse_args()
    apply_common_args(args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_flip_tta(cfg: Config) -> Config:
    """Wrap the model in mmdet's flip TTA, as mmdet's tools/test.py --tta does."""
    if 'tta_model' not in cfg:
        warnings.warn('Cannot find ``tta_model`` in config, we will set it as default.')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        warnings.warn('Cannot find ``tta_pipeline`` in config, we will set it as default.')
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.),
                         dict(type='RandomFlip', prob=0.)],
                        [dict(type='PackDetInputs',
                              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                         'scale_factor', 'flip', 'flip_direction'))]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def main():
    args = parse_args()
    cfg = Config.fromfile(check_config_path(args.config))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    dump = osp.join(cfg.work_dir, osp.basename(args.config))
    if osp.exists(dump) and osp.samefile(dump, args.config) and not args.overwrite:
        # the Runner dumps its config into the work dir: never over the config given here
        if args.work_dir is not None:
            raise FileExistsError(f'--work-dir {args.work_dir}: testing there would replace '
                                  f'{args.config} with this run\'s config; give another '
                                  '--work-dir (or --overwrite)')
        cfg.work_dir = osp.join(cfg.work_dir, 'test')
        print(f'work dir: {cfg.work_dir} (the config\'s own folder would get its dump)')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must name a .pkl/.pickle file, got {args.out}')
        check_output_path(args.out, args.overwrite, what='--out file')
    is_onnx = args.checkpoint.endswith('.onnx')
    if is_onnx:  # an exported model (tools/deployment/export_onnx.py), run by onnxruntime
        from mmmimic.deployment import onnx_test_cfg
        cfg = onnx_test_cfg(cfg, args.checkpoint)
    else:
        cfg.load_from = args.checkpoint

    setup_cpu_distributed(cfg)  # torchrun on a CPU-only machine: gloo, no CUDA device ids
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg = add_flip_tta(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # Testing with weights that do not fit the model must fail, not warn and go on. The check
    # looks through the DDP wrapper and the TTA wrapper at the detector the weights are for.
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if isinstance(model, BaseTTAModel):
        model = model.module
    if not is_onnx:
        check_checkpoint_matches_model(model, args.checkpoint, strict=True)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    sys.exit(run_main(main))
