# Copyright (c) mmmimic. Export a detector (plain, extracted student, or a distiller's student).
"""Export an mmmimic detector to ONNX: one graph from the normalised image to the detections.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx \\
        [--shape H W] [--dynamic] [--input-scale S] [--overwrite]

CONFIG is a plain mmdet config, an ``extract_student.py`` output, or a ``FeatureMimicDistiller``
config (its student is exported). Cross-scale students (a distiller with ``student_input_scale``,
or an extracted student with a ``ScaledInputDataPreprocessor``) resize the frame inside the graph.
``--shape`` fixes the graph's input size (the preprocessed, padded frame, e.g. 1024 1344 for
Caltech at a 1000 px short side with pad_size_divisor 32); without ``--shape``, or with
``--dynamic``, height and width are free. Run the result with ``mmmimic.deployment.OnnxDetector``
or score it with ``tools/test.py CONFIG model.onnx``. An existing ``--out`` file is refused
unless ``--overwrite``; the file is written to a temporary file in its folder and renamed when
complete, so a failure or Ctrl-C leaves neither a partial ``.onnx`` nor a temporary file. The
file records the model hash of CONFIG's network, which ``tools/test.py`` checks. See
docs/user_guides/deployment.md.
"""
import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a detector to ONNX (onnxruntime)')
    parser.add_argument('config', help='plain mmdet config, extracted student, or distiller '
                        'config')
    parser.add_argument('checkpoint', help='its checkpoint (distiller: the student is taken)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='fixed input size (padded); default: dynamic')
    parser.add_argument('--dynamic', action='store_true',
                        help='free input height/width (traced at --shape or 320x448)')
    parser.add_argument('--input-scale', type=float, default=None,
                        help='cross-scale input resize, for a config that records none '
                        '(default: the ScaledInputDataPreprocessor\'s input_scale or the '
                        'distiller\'s student_input_scale, else 1); refused when it contradicts '
                        'the recorded scale')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 16)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out file (refused without it)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        print(f'export_onnx needs the deploy extra (bash tools/install.sh --deploy): {e}',
              file=sys.stderr)
        return 2
    from mmmimic.deployment import export_onnx
    try:
        meta = export_onnx(args.config, args.checkpoint, args.out, shape=args.shape,
                           dynamic=args.dynamic, input_scale=args.input_scale, opset=args.opset,
                           overwrite=args.overwrite)
    except FileExistsError as e:
        print(f'export_onnx: {e}', file=sys.stderr)
        return 1
    size = 'dynamic HxW' if meta['input_shape'] is None else 'x'.join(map(str,
                                                                          meta['input_shape']))
    print(f'wrote {args.out}: {meta["model"]} ({meta["kind"]}), input {size}, '
          f'input scale {meta["input_scale"]}, opset {meta["opset"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
