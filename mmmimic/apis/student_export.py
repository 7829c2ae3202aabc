"""Export the student of a ``FeatureMimicDistiller`` run as a plain mmdet config + checkpoint.

:func:`extract_student` writes ``OUT_DIR/NAME.py`` (the training config with ``model`` replaced by
the student) and ``OUT_DIR/NAME.pth`` (``state_dict`` with the ``student.`` prefix stripped; no
teacher, connector, optimizer or message-hub entries), which mmdet's ``tools/test.py``,
``init_detector`` and mmdeploy load like any mmdet checkpoint.
``tools/model_converters/extract_student.py`` is its command line.

A cross-scale student (``student_input_scale != 1``) keeps its input scale: its data
preprocessor becomes a :class:`~mmmimic.models.data_preprocessors.ScaledInputDataPreprocessor`
with the distiller's scale, which resizes the normalised, padded batch exactly as the distiller
does before its student, so the extracted detector reads the same full-size frames as the
distiller, gives the distiller's predictions and exports to ONNX with the resize in the graph.
"""
import copy
import os
import os.path as osp
from typing import Tuple, Union

import torch
from mmengine.config import Config, ConfigDict

from mmmimic.fileio import atomic_output, atomic_write_text
from mmmimic.models.data_preprocessors.preprocessor_cfg import input_scale_of, preprocessor_type
from mmmimic.utils import (STUDENT_PREFIX, check_config_path, check_output_path,
                           extract_state_dict, read_checkpoint)


def student_config(cfg: Config) -> Config:
    """The training config with the distiller replaced by its student.

    Args:
        cfg: a config whose ``model`` is a ``FeatureMimicDistiller``.

    Returns:
        a new config; ``model`` is the student with the distiller's data preprocessor (the
        distiller's own, else the student's), a ``ScaledInputDataPreprocessor`` at the
        distiller's ``student_input_scale`` when that is not 1; resume/load settings are
        cleared.

    Raises:
        ValueError: not a distiller config, or a cross-scale distiller whose data preprocessor
            cannot carry the scale (see :func:`scaled_preprocessor`).
    """
    if cfg.model.get('type') != 'FeatureMimicDistiller':
        raise ValueError(f'expected a FeatureMimicDistiller config, got {cfg.model.get("type")}')
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    student = copy.deepcopy(model.student)
    if model.get('data_preprocessor') is not None:
        student.data_preprocessor = model.data_preprocessor
    scale = float(model.get('student_input_scale', 1.0))
    if scale != 1.0:
        student.data_preprocessor = scaled_preprocessor(student.get('data_preprocessor'), scale)
    cfg.model = student
    cfg.pop('teacher_config', None)
    cfg.load_from = None
    cfg.resume = False
    return cfg


def scaled_preprocessor(dp_cfg: Union[dict, None], scale: float) -> ConfigDict:
    """``dp_cfg`` (a ``DetDataPreprocessor`` config, or None for its defaults) as a
    ``ScaledInputDataPreprocessor`` that resizes the batch by ``scale`` after it.

    Raises:
        ValueError: ``dp_cfg`` is another preprocessor type (its own steps would have to be
            kept too), or already scales its input (resizing twice is not resizing once).
    """
    dp = ConfigDict(copy.deepcopy(dp_cfg) if dp_cfg else dict(type='DetDataPreprocessor'))
    kind = preprocessor_type(dp)
    if input_scale_of(dp) is not None:
        raise ValueError(f'the distiller resizes its student\'s batch by student_input_scale='
                         f'{scale}, but its data preprocessor already resizes by input_scale='
                         f'{input_scale_of(dp)}: use one of the two')
    if kind != 'DetDataPreprocessor':
        raise ValueError(f'cannot carry student_input_scale={scale} into the extracted '
                         f'student: its data preprocessor is {kind}, but only a '
                         'DetDataPreprocessor can become a ScaledInputDataPreprocessor')
    dp.type = 'ScaledInputDataPreprocessor'
    dp.input_scale = float(scale)
    return dp


def extract_student(config: str, checkpoint: str, out_dir: str, name: str = 'student',
                    overwrite: bool = False) -> Tuple[str, str]:
    """Export the student of ``checkpoint`` (trained with ``config``) into ``out_dir``.

    Args:
        config: the mimic training config.
        checkpoint: a checkpoint written while training it.
        out_dir: output folder (created).
        name: basename of the written ``.py`` and ``.pth``.
        overwrite: replace existing output files (refused otherwise).

    Returns:
        ``(config_path, checkpoint_path)`` of the written files.
    """
    cfg = student_config(Config.fromfile(check_config_path(config)))
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'output folder {out_dir} is a file')
    cfg_path = osp.join(out_dir, f'{name}.py')
    ckpt_path = osp.join(out_dir, f'{name}.pth')
    if osp.isdir(out_dir):
        for path in (cfg_path, ckpt_path):
            check_output_path(path, overwrite)
    ckpt = read_checkpoint(checkpoint, what='mimic checkpoint')
    out = dict(state_dict=extract_state_dict(
        ckpt, checkpoint, prefix=STUDENT_PREFIX, require_prefix=True))
    meta = ckpt.get('meta', {}) or {}
    if 'dataset_meta' in meta:
        out['meta'] = dict(dataset_meta=meta['dataset_meta'])
    os.makedirs(out_dir, exist_ok=True)
    # through fresh temporary files in out_dir: a planted file or symlink is never written
    # through, and an interrupted export leaves neither a half-written nor a .part file
    with atomic_output(ckpt_path, overwrite) as tmp:
        torch.save(out, tmp)
    atomic_write_text(cfg_path, cfg.pretty_text, overwrite)
    return cfg_path, ckpt_path
