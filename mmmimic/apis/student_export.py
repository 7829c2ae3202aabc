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

The written config is one that mmdet's own tools (``tools/test.py``, ``tools/train.py``, a plain
``Runner``) load as they load any mmdet config (:func:`student_config`):

* the distiller's keys are gone (:data:`DISTILLER_KEYS`, e.g. ``teacher_config``), and so are the
  distiller run's ``work_dir`` and ``launcher`` (a run of the student gets its own work dir);
* mmmimic's hooks are gone: ``TeacherCheckHook`` always (it needs a distiller), the hooks of
  :data:`STUDENT_HOOKS` (``RNGStateHook``) unless the student imports mmmimic anyway;
* ``custom_imports`` names ``mmmimic`` exactly when the rest of the config uses a type that
  mmmimic registers (found by walking every ``type`` in the config and asking mmdet's
  registries which module defines it: :func:`mmmimic_types`), e.g. an mmmimic backbone, a
  ``ScaledInputDataPreprocessor``, ``ProposalRecallMetric`` or a Caltech dataset; otherwise the
  config imports no mmmimic at all.
"""
import copy
import os
import os.path as osp
from typing import Any, Iterator, List, Set, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict

from mmmimic.fileio import atomic_output, atomic_write_text
from mmmimic.models.data_preprocessors.preprocessor_cfg import input_scale_of, preprocessor_type
from mmmimic.utils import (STUDENT_PREFIX, check_config_path, check_output_path,
                           extract_state_dict, read_checkpoint)

#: Top-level keys that only the distiller's config has (``wrap_with_teacher`` adds them); the
#: student's config leaves them out. A new top-level key of ``wrap_with_teacher`` belongs here
#: (``tests/test_tools/test_extract_student.py`` checks that the extracted config has no key the
#: student's own config lacks).
DISTILLER_KEYS = ('teacher_config', )
#: Keys that describe the distiller's run rather than the student: mmdet's tools set them
#: (``--work-dir``, ``--launcher``); left in, a run of the student would write into the
#: distiller's work dir.
RUN_KEYS = ('work_dir', 'launcher')
#: mmmimic hooks that serve a plain detector too: kept when the student imports mmmimic for a
#: registered module of its own, left out otherwise (the config then loads without mmmimic;
#: ``RNGStateHook`` only makes a resumed fine-tuning bit-identical). Every other mmmimic hook
#: (``TeacherCheckHook``) needs the distiller and is always left out.
STUDENT_HOOKS = ('RNGStateHook', )
MMMIMIC = 'mmmimic'


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
    for key in DISTILLER_KEYS + RUN_KEYS:
        cfg.pop(key, None)
    cfg.load_from = None
    cfg.resume = False
    _plain_runtime(cfg)
    return cfg


def _iter_types(node: Any) -> Iterator[Any]:
    """Every ``type`` value in a config tree (dicts, lists, tuples)."""
    if isinstance(node, dict):
        if 'type' in node:
            yield node['type']
        for value in node.values():
            yield from _iter_types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _iter_types(value)


def _mmmimic_names() -> Set[str]:
    """The names under which mmmimic's classes sit in mmdet's registries (and their parents)."""
    from mmengine.registry import Registry

    import mmdet.registry
    names = set()
    for registry in vars(mmdet.registry).values():
        while isinstance(registry, Registry):
            for name, obj in registry.module_dict.items():
                if _is_mmmimic(obj):
                    names.add(name)
            registry = registry.parent
    return names


def _is_mmmimic(obj: Any) -> bool:
    module = getattr(obj, '__module__', None) or ''
    return module == MMMIMIC or module.startswith(MMMIMIC + '.')


def _type_name(type_: Any) -> str:
    if isinstance(type_, str):
        return type_.rsplit('.', 1)[-1]  # 'mmdet.DetDataPreprocessor' -> scope-free name
    return getattr(type_, '__name__', repr(type_))


def mmmimic_types(node: Any) -> List[str]:
    """The ``type`` values in ``node`` (a config or any part of one) that name a module
    registered by mmmimic, sorted; a class given as ``type`` counts when mmmimic defines it."""
    registered = _mmmimic_names()
    found = set()
    for type_ in _iter_types(node):
        if isinstance(type_, str):
            if _type_name(type_) in registered:
                found.add(type_)
        elif _is_mmmimic(type_):
            found.add(_type_name(type_))
    return sorted(found)


def _plain_runtime(cfg: Config) -> None:
    """Leave out mmmimic's hooks and import (in place), keeping the :data:`STUDENT_HOOKS` and the
    import where the student needs mmmimic anyway: see the module docstring."""
    registered = _mmmimic_names()
    hook_keys = ('custom_hooks', 'default_hooks')

    def kind(hook: Any) -> str:
        type_ = hook.get('type') if isinstance(hook, dict) else None
        if not (_type_name(type_) in registered if isinstance(type_, str) else
                _is_mmmimic(type_)):
            return 'other'
        return 'student' if _type_name(type_) in STUDENT_HOOKS else 'distiller'

    def keep_hooks(keep: Tuple[str, ...]) -> None:
        for key in hook_keys:
            hooks = cfg.get(key)
            if isinstance(hooks, dict):
                cfg[key] = ConfigDict({k: h for k, h in hooks.items() if kind(h) in keep})
            elif hooks is not None:
                cfg[key] = [h for h in hooks if kind(h) in keep]

    keep_hooks(('other', 'student'))  # the distiller's hooks go in any case
    # does anything but the student hooks (and the import itself) need mmmimic?
    rest = {k: cfg[k] for k in cfg.keys() if k not in ('custom_imports', ) + hook_keys}
    for key in hook_keys:
        hooks = cfg.get(key) or []
        rest[key] = [h for h in (hooks.values() if isinstance(hooks, dict) else hooks)
                     if kind(h) == 'other']
    needed = bool(mmmimic_types(rest))
    if not needed:
        keep_hooks(('other', ))
    if 'custom_hooks' in cfg and not cfg.custom_hooks:
        cfg.pop('custom_hooks')
    _set_mmmimic_import(cfg, needed)


def _set_mmmimic_import(cfg: Config, needed: bool) -> None:
    """``custom_imports`` names mmmimic iff ``needed``; other imports are kept as they are."""
    imports_cfg = cfg.get('custom_imports') or {}
    imports = imports_cfg.get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    others = [m for m in imports if m != MMMIMIC and not m.startswith(MMMIMIC + '.')]
    if needed:
        allow_failed = imports_cfg.get('allow_failed_imports', False) if others else False
        cfg.custom_imports = ConfigDict(imports=others + [MMMIMIC],
                                        allow_failed_imports=allow_failed)
    elif others:
        cfg.custom_imports = ConfigDict(imports_cfg, imports=others)
    else:
        cfg.pop('custom_imports', None)


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
