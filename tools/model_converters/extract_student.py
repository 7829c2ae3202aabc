# Copyright (c) mmmimic. Export the student of a FeatureMimicDistiller as a plain mmdet model.
"""Write a plain mmdet checkpoint + config for the student of a mimic training run.

    python tools/model_converters/extract_student.py CONFIG CHECKPOINT OUT_DIR [--name NAME]

gives ``OUT_DIR/NAME.py`` (the training config with ``model`` replaced by the student) and
``OUT_DIR/NAME.pth`` (``state_dict`` with the ``student.`` prefix stripped; no teacher, connector,
optimizer or message-hub entries), which mmdet's ``tools/test.py``, ``init_detector`` and
mmdeploy load like any mmdet checkpoint.
"""
import argparse
import copy
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmengine.config import Config

STUDENT_PREFIX = 'student.'


def extract_student_state_dict(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """Keep the ``student.*`` entries of a distiller state dict, without the prefix.

    Args:
        state_dict: the distiller's state dict (a DDP ``module.`` prefix is tolerated).

    Returns:
        the student's state dict.

    Raises:
        KeyError: no ``student.`` entries (not a FeatureMimicDistiller checkpoint).
    """
    student = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(STUDENT_PREFIX):
            student[key[len(STUDENT_PREFIX):]] = value
    if not student:
        raise KeyError('no "student." entries in the checkpoint: is it a FeatureMimicDistiller '
                       'checkpoint?')
    return student


def student_config(cfg: Config) -> Config:
    """The training config with the distiller replaced by its student.

    Args:
        cfg: a config whose ``model`` is a ``FeatureMimicDistiller``.

    Returns:
        a new config; ``model`` is the student (with the distiller's data preprocessor when the
        student config has none), and resume/load settings are cleared.
    """
    if cfg.model.get('type') != 'FeatureMimicDistiller':
        raise ValueError(f'expected a FeatureMimicDistiller config, got {cfg.model.get("type")}')
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    student = copy.deepcopy(model.student)
    if model.get('data_preprocessor') is not None:
        student.data_preprocessor = model.data_preprocessor
    cfg.model = student
    cfg.pop('teacher_config', None)
    cfg.load_from = None
    cfg.resume = False
    return cfg


def extract_student(config: str, checkpoint: str, out_dir: str,
                    name: str = 'student') -> Tuple[str, str]:
    """Export the student of ``checkpoint`` (trained with ``config``) into ``out_dir``.

    Args:
        config: the mimic training config.
        checkpoint: a checkpoint written while training it.
        out_dir: output folder (created).
        name: basename of the written ``.py`` and ``.pth``.

    Returns:
        ``(config_path, checkpoint_path)`` of the written files.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    import mmmimic  # noqa: F401  (restricted, torch>=2.6-safe checkpoint loading)
    cfg = student_config(Config.fromfile(config))
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    out = dict(state_dict=extract_student_state_dict(state_dict))
    meta = ckpt.get('meta', {}) or {}
    if 'dataset_meta' in meta:
        out['meta'] = dict(dataset_meta=meta['dataset_meta'])
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, f'{name}.py')
    ckpt_path = osp.join(out_dir, f'{name}.pth')
    cfg.dump(cfg_path)
    torch.save(out, ckpt_path)
    return cfg_path, ckpt_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export the student of a mimic checkpoint as a '
                                     'plain mmdet config + checkpoint')
    parser.add_argument('config', help='the FeatureMimicDistiller training config')
    parser.add_argument('checkpoint', help='a checkpoint of that training run')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--name', default='student', help='basename of the written files')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg_path, ckpt_path = extract_student(args.config, args.checkpoint, args.out_dir, args.name)
    print(f'student config: {cfg_path}\nstudent checkpoint: {ckpt_path}')


if __name__ == '__main__':
    main()
