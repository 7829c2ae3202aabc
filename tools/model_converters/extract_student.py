# Copyright (c) mmmimic. Export the student of a FeatureMimicDistiller as a plain mmdet model.
"""Write a plain mmdet checkpoint + config for the student of a mimic training run.

    python tools/model_converters/extract_student.py CONFIG CHECKPOINT OUT_DIR [--name NAME]
        [--overwrite]

gives ``OUT_DIR/NAME.py`` and ``OUT_DIR/NAME.pth`` (see :mod:`mmmimic.apis.student_export`).
A cross-scale student's config gets a ``ScaledInputDataPreprocessor`` with the distiller's
``student_input_scale``: tested on the full-size frames it predicts what the distiller predicts.
The config is one mmdet's own tools load: no distiller keys or hooks, and
``custom_imports=dict(imports=['mmmimic'])`` only when the student uses a module mmmimic
registers (printed; ``RNGStateHook`` stays only then). Existing output files are kept unless
``--overwrite``.
"""
import argparse

from mmengine.config import Config

from mmmimic.apis import extract_student
from mmmimic.apis.student_export import STUDENT_HOOKS, mmmimic_types


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export the student of a mimic checkpoint as a '
                                     'plain mmdet config + checkpoint')
    parser.add_argument('config', help='the FeatureMimicDistiller training config')
    parser.add_argument('checkpoint', help='a checkpoint of that training run')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--name', default='student', help='basename of the written files')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing output files')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg_path, ckpt_path = extract_student(
        args.config, args.checkpoint, args.out_dir, args.name, args.overwrite)
    print(f'student config: {cfg_path}\nstudent checkpoint: {ckpt_path}')
    needs = [t for t in mmmimic_types(Config.fromfile(cfg_path).to_dict())
             if t not in STUDENT_HOOKS]
    if needs:
        print(f'the config imports mmmimic (custom_imports) for: {", ".join(needs)}')
    else:
        print('a plain mmdet config: it imports no mmmimic')


if __name__ == '__main__':
    main()
