"""What mmmimic reads from an ``.onnx`` file, and how it is checked before anything uses it.

An ``.onnx`` file is data a user receives: nothing in it is trusted. Reading one
(:func:`load_onnx_file`, behind :class:`~.runtime.OnnxDetector`, :func:`~.runtime.read_onnx_meta`,
``tools/test.py CONFIG model.onnx`` and the speed tool) does this, and refuses the file with a
:class:`RefusedOnnxError` naming the file and the key or node otherwise:

* **size**: at most 2 GiB (protobuf's limit); the bytes are read once, and the same bytes are
  checked and handed to onnxruntime (no second read that could see another file);
* **metadata** (``metadata_props`` entry ``mmmimic``, written by :func:`~.export.export_onnx`):
  exactly one entry, at most 64 KiB of JSON, parsed with duplicate keys, ``NaN`` and
  ``Infinity`` refused, against a closed schema (:func:`parse_onnx_meta`): known keys only,
  each of its type (numbers finite, of the right length and range; no ``bool`` for a number);
  the data preprocessor is a ``DetDataPreprocessor`` (:data:`PREPROCESSOR_TYPES`, the only
  allowed type name) with known keys only and no ``batch_augments``. Its values become keyword
  arguments of that one class (:func:`build_file_preprocessor`), never a registry build;
* **graph** (:func:`check_onnx_graph`): inputs ``image, img_shape, scale_factor``, outputs
  ``boxes, scores, labels``; no tensor with external data (the exporter writes none: a path in
  the file would be read); and every ``Loop`` (in the main graph and every subgraph: ``If``
  branches, ``Loop``/``Scan`` bodies) has a constant trip count ``M`` (an initializer or a
  ``Constant`` node, not a graph input), at most :data:`MAX_LOOP_TRIPS` counted with the loops
  it sits in. A ``Loop`` without ``M`` runs until its condition turns false, i.e. as long as
  the file says; one with ``M = 2**62`` hangs onnxruntime. The exporter writes no ``Loop``.

The model's identity is :func:`model_hash`: the exported file records the hash of the model
config it was exported from, and ``tools/test.py`` (:func:`~.runtime.onnx_test_cfg`) refuses a
file whose hash differs from the config's (:func:`check_onnx_identity`).

This module needs only the standard library and (lazily) ``onnx``.
"""
import hashlib
import json
import math
import os
import os.path as osp
import re
from typing import Any, Dict, Iterable, Optional, Tuple

#: Metadata key of the export settings in the ``.onnx`` file.
META_KEY = 'mmmimic'
#: The largest metadata text read (the exporter writes about 1 KiB).
MAX_META_CHARS = 64 * 1024
#: The largest ``.onnx`` file read (protobuf cannot parse more).
MAX_ONNX_BYTES = 2 * 1024**3
#: The largest total trip count of a ``Loop`` (nested loops multiply).
MAX_LOOP_TRIPS = 10_000
#: The only data preprocessor type an ``.onnx`` file may name (built directly, not by registry).
PREPROCESSOR_TYPES = ('DetDataPreprocessor', 'mmdet.DetDataPreprocessor')
#: Export routes (``DeployableDetector.kind``).
KINDS = ('rpn', 'rfcn', 'faster_rcnn', 'one_stage')
#: The graph's inputs and outputs, in order (see :mod:`.graph`).
GRAPH_INPUTS = ('image', 'img_shape', 'scale_factor')
GRAPH_OUTPUTS = ('boxes', 'scores', 'labels')
HASH_RE = re.compile(r'sha256:[0-9a-f]{64}')
NAME_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_.]{0,99}')
REEXPORT = 're-export it with tools/deployment/export_onnx.py'


class RefusedOnnxError(ValueError):
    """An ``.onnx`` file that mmmimic will not use (the message names the file and why)."""


# --------------------------------------------------------------------------- identity
def _canonical(obj: Any) -> Any:
    """``obj`` as plain JSON values: dicts with string keys, lists (tuples too), scalars;
    anything else (a class in a lazy config) by its qualified name or its repr."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, type) or callable(obj):
        return f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", repr(obj))}'
    return repr(obj)


def model_hash(model_cfg: dict) -> str:
    """The identity of a network: ``sha256:`` of its model config as canonical JSON (sorted
    keys, no spaces, tuples as lists), ``data_preprocessor`` left out.

    The preprocessing is compared on its own (normalisation, channel order and input scale, by
    :func:`~.runtime.onnx_test_cfg`; the input size by the runtime), so a test config may pad
    differently for a dynamic export. Everything else the model config says (layers, widths,
    heads, ``test_cfg`` with its NMS settings, which the graph has built in) is covered.
    """
    cfg = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else dict(model_cfg)
    cfg = {k: v for k, v in cfg.items() if k != 'data_preprocessor'}
    text = json.dumps(_canonical(cfg), sort_keys=True, separators=(',', ':'), ensure_ascii=True)
    return 'sha256:' + hashlib.sha256(text.encode('ascii')).hexdigest()


def check_onnx_identity(meta: dict, expected_hash: str, onnx_file: str, config: str) -> None:
    """Refuse ``onnx_file`` unless its recorded model hash is ``expected_hash`` (``config``'s).

    Raises:
        RefusedOnnxError: the file records no hash (an older export) or another one; the
            message names the file, the config and both hashes.
    """
    recorded = meta.get('model_hash')
    source = f'exported from {meta.get("config")} ({meta.get("model")})'
    if recorded is None:
        raise RefusedOnnxError(
            f'{onnx_file} records no model hash ({source}, by an mmmimic that did not record '
            f'one), so it cannot be checked against {config} (model hash {expected_hash}): '
            f'{REEXPORT} from {config}')
    if recorded != expected_hash:
        raise RefusedOnnxError(
            f'{onnx_file} was exported from another network: its model hash {recorded} '
            f'({source}) differs from the model hash {expected_hash} of {config}. Test it '
            f'with the config it was exported from, or export the checkpoint of {config}')


# --------------------------------------------------------------------------- metadata
def _refuse(onnx_file: str, key: str, problem: str) -> RefusedOnnxError:
    return RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" key {key}: {problem}; the file '
                            f'is refused ({REEXPORT})')


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_str(v, max_len=4096):
    if not isinstance(v, str) or len(v) > max_len or '\x00' in v:
        return f'must be a string of at most {max_len} characters, got {_show(v)}'


def _check_optional_str(v):
    return None if v is None else _check_str(v)


def _check_name(v):
    if not isinstance(v, str) or not NAME_RE.fullmatch(v):
        return f'must be a class name, got {_show(v)}'


def _check_kind(v):
    if v not in KINDS:
        return f'must be one of {list(KINDS)}, got {_show(v)}'


def _check_bool(v):
    if not isinstance(v, bool):
        return f'must be true or false, got {_show(v)}'


def _check_scale(v):
    if not _is_number(v) or not 0 < v <= 1:
        return f'must be a number in (0, 1], got {_show(v)}'


def _check_shape(v):
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 2 and all(_is_int(x) and 0 < x <= 65536
                                                        for x in v)):
        return f'must be null or two integers [H, W] in 1..65536, got {_show(v)}'


def _check_opset(v):
    if not _is_int(v) or not 16 <= v <= 99:
        return f'must be an integer opset in 16..99, got {_show(v)}'


def _check_hash(v):
    if v is not None and (not isinstance(v, str) or not HASH_RE.fullmatch(v)):
        return f'must be "sha256:" and 64 hex digits, got {_show(v)}'


def _show(v: Any, limit: int = 80) -> str:
    text = json.dumps(v) if isinstance(v, (dict, list, str, int, float, bool, type(None))) \
        else repr(v)
    return text if len(text) <= limit else text[:limit] + '...'


#: Keys of the metadata: (checker, required). ``model_hash`` is absent from older exports.
META_SCHEMA = {
    'config': (_check_str, False),
    'checkpoint': (_check_optional_str, False),
    'model': (_check_name, False),
    'kind': (_check_kind, False),
    'input_scale': (_check_scale, True),
    'input_shape': (_check_shape, True),
    'cap_nms': (_check_bool, False),
    'fused_deconv': (_check_bool, False),
    'data_preprocessor': (None, True),  # checked by _check_preprocessor
    'opset': (_check_opset, False),
    'model_hash': (_check_hash, False),
}


def _check_channels(v, positive=False):
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) in (1, 3) and all(_is_number(x) for x in v)):
        return f'must be null or a list of 1 or 3 finite numbers, got {_show(v)}'
    if positive and not all(x > 0 for x in v):
        return f'must be positive, got {_show(v)}'


def _check_int_range(lo, hi):
    def check(v):
        if not _is_int(v) or not lo <= v <= hi:
            return f'must be an integer in {lo}..{hi}, got {_show(v)}'
    return check


def _check_finite(v):
    if not _is_number(v):
        return f'must be a finite number, got {_show(v)}'


def _check_no_augments(v):
    if v not in (None, []):
        return ('must be null: batch augments are training-time transforms, and no transform '
                f'config is read from an .onnx file; got {_show(v)}')


#: Keys of the data preprocessor (``DetDataPreprocessor``'s arguments) and their checks.
PREPROCESSOR_SCHEMA = {
    'mean': _check_channels,
    'std': lambda v: _check_channels(v, positive=True),
    'pad_size_divisor': _check_int_range(1, 4096),
    'pad_value': _check_finite,
    'pad_mask': _check_bool,
    'mask_pad_value': _check_int_range(0, 255),
    'pad_seg': _check_bool,
    'seg_pad_value': _check_int_range(0, 255),
    'bgr_to_rgb': _check_bool,
    'rgb_to_bgr': _check_bool,
    'boxtype2tensor': _check_bool,
    'non_blocking': lambda v: None if v is None else _check_bool(v),
    'batch_augments': _check_no_augments,
}


def _check_preprocessor(dp: Any, onnx_file: str) -> dict:
    key = 'data_preprocessor'
    if not isinstance(dp, dict):
        raise _refuse(onnx_file, key, f'must be an object, got {_show(dp)}')
    if dp.get('type') not in PREPROCESSOR_TYPES:
        raise _refuse(onnx_file, f'{key}.type',
                      f'{_show(dp.get("type"))} is not an allowed data preprocessor (allowed: '
                      f'{", ".join(PREPROCESSOR_TYPES)}); no type name from a file is built')
    for name, value in dp.items():
        if name == 'type':
            continue
        if name not in PREPROCESSOR_SCHEMA:
            raise _refuse(onnx_file, f'{key}.{name}', 'unknown key (known: type, ' +
                          ', '.join(PREPROCESSOR_SCHEMA) + ')')
        problem = PREPROCESSOR_SCHEMA[name](value)
        if problem:
            raise _refuse(onnx_file, f'{key}.{name}', problem)
    if dp.get('bgr_to_rgb') and dp.get('rgb_to_bgr'):
        raise _refuse(onnx_file, f'{key}.rgb_to_bgr', 'bgr_to_rgb and rgb_to_bgr are both true')
    return dp


def _no_duplicates(onnx_file: str):
    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise _refuse(onnx_file, k, 'duplicate key (which one counts would be a guess)')
            seen[k] = v
        return seen
    return hook


def _no_constant(onnx_file: str):
    def hook(name):
        raise RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" holds {name}, which is not '
                               f'JSON; the file is refused ({REEXPORT})')
    return hook


def parse_onnx_meta(text: str, onnx_file: str) -> dict:
    """The metadata JSON ``text`` of ``onnx_file``, checked against :data:`META_SCHEMA`.

    Returns:
        the parsed dict (``model_hash`` None where an older export recorded none).

    Raises:
        RefusedOnnxError: not JSON, too long or too deep, duplicate keys, ``NaN``/``Infinity``,
            an unknown or missing key, a value of the wrong type or range, or a data
            preprocessor other than ``DetDataPreprocessor`` (the message names file and key).
    """
    if len(text) > MAX_META_CHARS:
        raise RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" is {len(text)} characters, '
                               f'more than the {MAX_META_CHARS} read; the file is refused')
    try:
        meta = json.loads(text, object_pairs_hook=_no_duplicates(onnx_file),
                          parse_constant=_no_constant(onnx_file))
    except json.JSONDecodeError as e:
        raise RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" is not valid JSON: {e.msg} '
                               f'at line {e.lineno} column {e.colno}; the file is refused '
                               f'({REEXPORT})') from None
    except RecursionError:
        raise RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" is nested too deeply to be '
                               f'export settings; the file is refused ({REEXPORT})') from None
    if not isinstance(meta, dict):
        raise RefusedOnnxError(f'{onnx_file}: metadata "{META_KEY}" must be a JSON object, got '
                               f'{_show(meta)}; the file is refused ({REEXPORT})')
    for key in meta:
        if key not in META_SCHEMA:
            raise _refuse(onnx_file, key, 'unknown key (known: ' + ', '.join(META_SCHEMA) + ')')
    for key, (check, required) in META_SCHEMA.items():
        if key not in meta:
            if required:
                raise _refuse(onnx_file, key, 'missing')
            continue
        problem = check(meta[key]) if check is not None else None
        if problem:
            raise _refuse(onnx_file, key, problem)
    _check_preprocessor(meta['data_preprocessor'], onnx_file)
    meta.setdefault('model_hash', None)
    return meta


def build_file_preprocessor(dp: dict):
    """A ``DetDataPreprocessor`` from the checked metadata ``dp`` of a file: the class itself
    with the schema's keyword arguments (no registry, so no type name from the file is
    looked up or imported)."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    assert dp.get('type') in PREPROCESSOR_TYPES, dp.get('type')
    kwargs = {k: v for k, v in dp.items() if k in PREPROCESSOR_SCHEMA}
    return DetDataPreprocessor(**kwargs)


# --------------------------------------------------------------------------- graph
def _tensors_of(graph) -> Iterable:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField('t'):
                yield attr.t
            yield from attr.tensors


def _subgraphs(node) -> Iterable:
    for attr in node.attribute:
        if attr.HasField('g'):
            yield attr.name, attr.g
        for i, g in enumerate(attr.graphs):
            yield f'{attr.name}[{i}]', g


def _constants(graph, outer: Dict[str, Optional[int]]) -> Dict[str, Optional[int]]:
    """Names visible in ``graph`` that hold a constant integer (value) or something else
    (None: also shadows an outer constant of the same name)."""
    from onnx import numpy_helper
    scope = dict(outer)
    inputs = {i.name for i in graph.input}
    for name in inputs:
        scope[name] = None  # a graph input (or a loop body's input) is fed at run time
    for tensor in graph.initializer:
        if tensor.name not in inputs:
            scope[tensor.name] = _scalar_int(tensor, numpy_helper)
    for node in graph.node:
        for out in node.output:
            scope[out] = None
        if node.op_type == 'Constant' and node.domain in ('', 'ai.onnx') and node.output:
            for attr in node.attribute:
                if attr.name == 'value':
                    scope[node.output[0]] = _scalar_int(attr.t, numpy_helper)
                elif attr.name == 'value_int':
                    scope[node.output[0]] = int(attr.i)
    return scope


def _scalar_int(tensor, numpy_helper) -> Optional[int]:
    """The value of a one-element integer tensor, else None (other tensors are not read)."""
    if math.prod(tensor.dims) != 1:
        return None
    array = numpy_helper.to_array(tensor)
    if array.size != 1 or array.dtype.kind not in 'iu':
        return None
    return int(array.reshape(-1)[0])


def _node_name(node, where: str) -> str:
    label = f'"{node.name}"' if node.name else f'(unnamed, outputs {list(node.output)})'
    return f'{label} in {where}' if where else label


def _check_loops(graph, onnx_file: str, outer: Dict[str, Optional[int]], trips: int,
                 where: str) -> None:
    scope = _constants(graph, outer)
    for node in graph.node:
        inner_trips = trips
        if node.op_type == 'Loop' and node.domain in ('', 'ai.onnx'):
            name = _node_name(node, where)
            m = node.input[0] if node.input else ''
            if not m:
                raise RefusedOnnxError(
                    f'{onnx_file}: Loop node {name} has no trip count: it runs until its '
                    'condition turns false, i.e. as long as the file says; the file is refused '
                    f'(a Loop needs a constant trip count of at most {MAX_LOOP_TRIPS})')
            value = scope.get(m)
            if value is None:
                raise RefusedOnnxError(
                    f'{onnx_file}: Loop node {name} has a trip count ({m!r}) computed at run '
                    'time, not a constant in the file; the file is refused (a Loop needs a '
                    f'constant trip count of at most {MAX_LOOP_TRIPS})')
            if value < 0:
                raise RefusedOnnxError(
                    f'{onnx_file}: Loop node {name} has a negative trip count {value}; the '
                    'file is refused')
            inner_trips = trips * value
            if inner_trips > MAX_LOOP_TRIPS:
                total = '' if trips == 1 else f' ({trips} times, inside other loops)'
                raise RefusedOnnxError(
                    f'{onnx_file}: Loop node {name} runs {value} steps{total}, more than the '
                    f'{MAX_LOOP_TRIPS} allowed; the file is refused (such a graph can run for '
                    'ever)')
        for attr_name, sub in _subgraphs(node):
            label = f'{node.op_type} {node.name or "(unnamed)"}.{attr_name}'
            _check_loops(sub, onnx_file, scope, inner_trips,
                         f'{where} > {label}' if where else label)


def _check_function_loops(function, onnx_file: str) -> None:
    def walk(nodes, where):
        for node in nodes:
            if node.op_type == 'Loop' and node.domain in ('', 'ai.onnx'):
                raise RefusedOnnxError(
                    f'{onnx_file}: Loop node {_node_name(node, where)} in the model-local '
                    f'function {function.domain}.{function.name}: its trip count cannot be '
                    'bounded at load (the exporter writes no functions); the file is refused')
            for attr_name, sub in _subgraphs(node):
                label = f'{node.op_type} {node.name or "(unnamed)"}.{attr_name}'
                walk(sub.node, f'{where} > {label}' if where else label)
    walk(function.node, '')


def check_onnx_graph(model, onnx_file: str) -> None:
    """Refuse a graph that mmmimic's exporter would not write and that could read files or
    run for ever: other inputs/outputs, external data, an unbounded ``Loop`` (see the module
    docstring).

    Raises:
        RefusedOnnxError: naming the file and the input, tensor or node.
    """
    from onnx import TensorProto
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = tuple(i.name for i in graph.input if i.name not in initializers)
    outputs = tuple(o.name for o in graph.output)
    if inputs != GRAPH_INPUTS or outputs != GRAPH_OUTPUTS:
        raise RefusedOnnxError(
            f'{onnx_file}: the graph takes {list(inputs)} and gives {list(outputs)}; an mmmimic '
            f'export takes {list(GRAPH_INPUTS)} and gives {list(GRAPH_OUTPUTS)}; the file is '
            f'refused ({REEXPORT})')
    graphs = [graph]
    while graphs:
        g = graphs.pop()
        tensors = list(_tensors_of(g)) + [s.values for s in g.sparse_initializer]
        for tensor in tensors:
            if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
                where = {e.key: e.value for e in tensor.external_data}.get('location', '?')
                raise RefusedOnnxError(
                    f'{onnx_file}: tensor "{tensor.name}" keeps its data in an external file '
                    f'({where!r}); mmmimic exports keep every tensor inside the .onnx file, and '
                    'no path named in a file is read; the file is refused')
        for node in g.node:
            graphs.extend(sub for _, sub in _subgraphs(node))
    _check_loops(graph, onnx_file, {}, 1, '')
    for function in model.functions:
        _check_function_loops(function, onnx_file)


# --------------------------------------------------------------------------- loading
def load_onnx_file(onnx_file: str, check_graph: bool = True) -> Tuple[bytes, Any, dict]:
    """Read ``onnx_file`` once and check it (see the module docstring).

    Args:
        onnx_file: the ``.onnx`` path.
        check_graph: also run :func:`check_onnx_graph` (False: the metadata only).

    Returns:
        ``(the file's bytes, the parsed ModelProto, the checked metadata)``; run the bytes,
        not the path, so that onnxruntime sees what was checked.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ONNX model, or one without ``mmmimic`` metadata.
        RefusedOnnxError: see :func:`parse_onnx_meta` and :func:`check_onnx_graph`.
    """
    import onnx
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX model not found: {onnx_file}')
    size = os.path.getsize(onnx_file)
    if size > MAX_ONNX_BYTES:
        raise RefusedOnnxError(f'{onnx_file} is {size} bytes, more than an ONNX file can hold '
                               f'({MAX_ONNX_BYTES}); the file is refused')
    with open(onnx_file, 'rb') as fh:
        data = fh.read(MAX_ONNX_BYTES + 1)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise ValueError(f'{onnx_file} is not a readable ONNX model: {e}') from e
    entries = [p.value for p in model.metadata_props if p.key == META_KEY]
    if not entries:
        raise ValueError(f'{onnx_file} has no "{META_KEY}" metadata: export it with '
                         'tools/deployment/export_onnx.py')
    if len(entries) > 1:
        raise RefusedOnnxError(f'{onnx_file} has {len(entries)} "{META_KEY}" metadata entries '
                               '(which one counts would be a guess); the file is refused')
    meta = parse_onnx_meta(entries[0], onnx_file)
    if check_graph:
        check_onnx_graph(model, onnx_file)
    return data, model, meta
