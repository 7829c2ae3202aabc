"""Load a detector (plain config, extracted student, or distiller) and export it to ONNX.

:func:`load_detector` accepts what the project's tools write:

* a plain mmdet config + checkpoint (``tools/train.py`` of a student or teacher);
* the output of ``tools/model_converters/extract_student.py`` (a plain config + student weights;
  a cross-scale student's ``ScaledInputDataPreprocessor`` carries its input scale);
* a ``FeatureMimicDistiller`` config + a checkpoint of its training run: the student is built and
  loaded (``student.`` entries), the teacher is neither built nor read.

The input scale (a ``ScaledInputDataPreprocessor``'s ``input_scale``, a distiller's
``student_input_scale``) becomes the graph's input resize, and the runtime gets the plain
``DetDataPreprocessor`` part (the graph resizes, the runtime must not resize again).

:func:`export_onnx` traces :class:`~.graph.DeployableDetector` with ``torch.onnx.export``
(TorchScript exporter, opset 17), checks the file with ``onnx.checker``, stores the data
preprocessing, the input shape and the model hash (:func:`~.checks.model_hash` of the model
config) in the model's metadata (``mmmimic`` key, JSON), checks the result as a reader will
(:mod:`.checks`) and writes it through :func:`mmmimic.fileio.atomic_output`: an existing
``out`` is refused unless ``overwrite``, and a failure or Ctrl-C leaves no ``.onnx`` and no
temporary file behind.
"""
import copy
import json
import os.path as osp
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict

from mmmimic.fileio import atomic_output, check_output_path
from mmmimic.models.data_preprocessors.preprocessor_cfg import input_scale_of, plain_preprocessor
from .checks import META_KEY, check_onnx_graph, model_hash, parse_onnx_meta  # noqa: F401
from .graph import DeployableDetector, input_names, output_names

#: ONNX opset of exported graphs (RoiAlign ``half_pixel`` needs 16).
OPSET = 17
#: Tracing size of dynamic exports without ``shape``.
TRACE_SHAPE = (320, 448)


def student_model_cfg(cfg: Config) -> Tuple[ConfigDict, Optional[float]]:
    """The deployable model config of ``cfg`` and the input scale it records.

    A ``FeatureMimicDistiller`` gives its student as ``extract_student.py`` writes it
    (:func:`mmmimic.apis.student_config`) and its ``student_input_scale``; any other model is
    returned as is, with the ``input_scale`` of its ``ScaledInputDataPreprocessor``, or None
    when it records none (a plain ``DetDataPreprocessor``).
    """
    from mmmimic.apis import student_config
    if cfg.model.get('type') == 'FeatureMimicDistiller':
        return student_config(cfg).model, float(cfg.model.get('student_input_scale', 1.0))
    model_cfg = copy.deepcopy(cfg.model)
    return model_cfg, input_scale_of(model_cfg.get('data_preprocessor'))


def runtime_preprocessor(model_cfg: dict) -> ConfigDict:
    """The data preprocessor the runtime applies before the graph: the model's, with a
    ``ScaledInputDataPreprocessor`` turned into the ``DetDataPreprocessor`` it extends (the
    resize is in the graph)."""
    return plain_preprocessor(model_cfg.get('data_preprocessor'))


def resolve_input_scale(recorded: Optional[float], given: Optional[float], config: str) -> float:
    """The graph's input scale: ``given`` (``--input-scale``) where the config records none,
    else the recorded one; a ``given`` scale that contradicts the recorded one is refused."""
    if given is None:
        return 1.0 if recorded is None else recorded
    if recorded is not None and float(given) != recorded:
        raise ValueError(
            f'--input-scale {given} contradicts the input scale {recorded} that {config} '
            'records (ScaledInputDataPreprocessor.input_scale, or the distiller\'s '
            'student_input_scale): the network was trained at that scale; omit --input-scale')
    return float(given)


def load_detector(config: str, checkpoint: Optional[str],
                  input_scale: Optional[float] = None) -> Tuple[nn.Module, ConfigDict, float]:
    """Build the deployable detector of ``config`` and load ``checkpoint`` strictly.

    Args:
        config: a plain mmdet config, an ``extract_student.py`` config, or a
            ``FeatureMimicDistiller`` config.
        checkpoint: weights (a distiller checkpoint's ``student.`` entries are taken); None keeps
            the initial weights (tests, speed benchmarks).
        input_scale: the input scale for a config that records none (a cross-scale student
            extracted before ``ScaledInputDataPreprocessor``: pass 0.5); must equal the
            recorded scale otherwise.

    Returns:
        ``(detector in eval mode, the runtime's data_preprocessor config, input scale)``.

    Raises:
        FileNotFoundError: config or checkpoint missing.
        ValueError: ``input_scale`` contradicts the scale the config records.
        RuntimeError: the checkpoint does not fit the model (missing/unexpected keys, shapes).
    """
    detector, model_cfg, scale = _load_detector(config, checkpoint, input_scale)
    return detector, runtime_preprocessor(model_cfg), scale


def config_model_hash(config: str) -> str:
    """The model hash (:func:`~.checks.model_hash`) of the network that ``config`` (a config
    path) exports: its model, or a distiller's student."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    return model_hash(student_model_cfg(Config.fromfile(config))[0])


def _load_detector(config: str, checkpoint: Optional[str],
                   input_scale: Optional[float]) -> Tuple[nn.Module, ConfigDict, float]:
    """:func:`load_detector` returning the deployable model config instead of its
    preprocessor."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import mmmimic  # noqa: F401  (registers the modules)
    from mmmimic.utils import STUDENT_PREFIX, load_state_dict
    if not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg, recorded = student_model_cfg(cfg)
    scale = resolve_input_scale(recorded, input_scale, config)
    detector = MODELS.build(copy.deepcopy(model_cfg))  # building mutates nested dicts
    if checkpoint is not None:
        state = load_state_dict(checkpoint, what='checkpoint', prefix=STUDENT_PREFIX)
        own = detector.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        mismatched = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs model '
                            f'{tuple(own[k].shape)}' for k in set(own) & set(state)
                            if hasattr(state[k], 'shape') and state[k].shape != own[k].shape)
        if missing or unexpected or mismatched:
            def listing(name, keys):
                more = f' ... (+{len(keys) - 8} more)' if len(keys) > 8 else ''
                return f'\n  {name} ({len(keys)}): {keys[:8]}{more}' if keys else ''
            raise RuntimeError(
                f'checkpoint {checkpoint} does not match the model of {config} '
                f'({type(detector).__name__}):' + listing('missing in checkpoint', missing) +
                listing('unexpected in checkpoint', unexpected) +
                listing('shape mismatch', mismatched))
        detector.load_state_dict(state, strict=True)
    detector.eval()
    return detector, model_cfg, scale


def example_inputs(shape: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tracing inputs of an ``H x W`` image: random pixels (so NMS keeps several boxes)."""
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    image = torch.randn((1, 3, h, w), generator=gen)
    return image, torch.tensor([h, w], dtype=torch.float32), torch.ones(2)


def check_shape(shape: Sequence[int], dp_cfg: dict, input_scale: float) -> Tuple[int, int]:
    """Validate an export shape: two positive ints, padded already, exactly resizable."""
    if len(shape) != 2 or not all(int(v) == v and v > 0 for v in shape):
        raise ValueError(f'--shape must be two positive integers H W, got {list(shape)}')
    h, w = int(shape[0]), int(shape[1])
    divisor = dp_cfg.get('pad_size_divisor', 1) or 1
    if h % divisor or w % divisor:
        raise ValueError(
            f'--shape {h} {w} is not a multiple of the data_preprocessor\'s pad_size_divisor '
            f'{divisor}: frames are padded to a multiple of it before the network, so the graph '
            f'input is e.g. {-(-h // divisor) * divisor} {-(-w // divisor) * divisor}')
    if not (float(h * input_scale).is_integer() and float(w * input_scale).is_integer()):
        raise ValueError(f'--shape {h} {w} times the input scale {input_scale} is not an integer '
                         'size (the cross-scale resize must be exact)')
    return h, w


def export_onnx(config: str,
                checkpoint: Optional[str],
                out: str,
                shape: Optional[Sequence[int]] = None,
                dynamic: bool = False,
                input_scale: Optional[float] = None,
                opset: int = OPSET,
                cap_nms: bool = True,
                fuse_deconv: bool = True,
                overwrite: bool = False) -> dict:
    """Export the detector of ``config``/``checkpoint`` to ``out`` (see the module docstring).

    Args:
        config, checkpoint, input_scale: see :func:`load_detector`.
        out: the ``.onnx`` path; its folder must exist; an existing file is refused unless
            ``overwrite`` (``--overwrite``).
        shape: ``(H, W)`` of the (padded) network input; the graph accepts only this size
            unless ``dynamic``. None: dynamic, traced at :data:`TRACE_SHAPE` (rounded up to the
            pad divisor).
        dynamic: export with symbolic ``H``/``W`` (any padded size).
        opset: ONNX opset.
        cap_nms, fuse_deconv: see :class:`~.graph.DeployableDetector` (False only for speed
            comparisons).

    Returns:
        the metadata dict stored in the file.

    Raises:
        FileExistsError: ``out`` exists and not ``overwrite``.
        RefusedOnnxError: the file would be refused when read (e.g. a data preprocessor other
            than ``DetDataPreprocessor``).
    """
    import onnx
    out_dir = osp.dirname(osp.abspath(out))
    if not osp.isdir(out_dir):
        raise FileNotFoundError(f'output folder does not exist: {out_dir} (for --out {out})')
    if not out.endswith('.onnx'):
        raise ValueError(f'--out must name a .onnx file, got {out}')
    if opset < 16:
        raise ValueError(f'opset {opset} is too old: RoiAlign half_pixel needs opset >= 16')
    check_output_path(out, overwrite, what='--out file')  # before the minutes of exporting
    detector, model_cfg, scale = _load_detector(config, checkpoint, input_scale)
    dp_cfg = runtime_preprocessor(model_cfg)
    if shape is None:
        dynamic = True
        divisor = max(int(dp_cfg.get('pad_size_divisor', 1) or 1), int(round(1 / scale)))
        shape = [-(-v // divisor) * divisor for v in TRACE_SHAPE]
    h, w = check_shape(shape, dp_cfg, scale)
    module = DeployableDetector(detector, scale, cap_nms=cap_nms,
                                fuse_deconv=fuse_deconv).eval()
    inputs = example_inputs((h, w))
    meta = dict(
        config=osp.abspath(config),
        checkpoint=osp.abspath(checkpoint) if checkpoint else None,
        model=type(detector).__name__,
        kind=module.kind,
        input_scale=scale,
        input_shape=None if dynamic else [h, w],
        cap_nms=bool(cap_nms),
        fused_deconv=module.fused_neck is not None,
        data_preprocessor=dp_cfg.to_dict(),
        opset=opset,
        model_hash=model_hash(model_cfg))
    dynamic_axes = {'image': {2: 'height', 3: 'width'}} if dynamic else {}
    for name in output_names():
        dynamic_axes[name] = {0: 'num_dets'}
    with atomic_output(out, overwrite, what='--out file') as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(
                module, inputs, tmp, dynamo=False, opset_version=opset,
                input_names=input_names(), output_names=output_names(),
                dynamic_axes=dynamic_axes, do_constant_folding=True)
        model = onnx.load(tmp)
        onnx.checker.check_model(model)
        del model.metadata_props[:]
        entry = model.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        # what every reader checks: refuse here what would be refused there
        parse_onnx_meta(entry.value, out)
        check_onnx_graph(model, out)
        onnx.save(model, tmp)
    return meta
