"""Reading a data-preprocessor config: is it a :class:`ScaledInputDataPreprocessor`, at which
scale, and what is its plain ``DetDataPreprocessor`` part.

The distiller (the teacher sees the plain part), ``extract_student`` (a cross-scale student gets
the scaled one) and the ONNX export (the resize goes into the graph, the runtime applies the
plain part) all ask these questions of a config dict; they live here, free of model imports, so
that any of those modules can import them without an import cycle.
"""
import copy
from typing import Optional

from mmengine.config import ConfigDict

SCALED = 'ScaledInputDataPreprocessor'
PLAIN = 'DetDataPreprocessor'


def preprocessor_type(dp_cfg: Optional[dict]) -> str:
    """The class name a data-preprocessor config builds (``DetDataPreprocessor`` when it gives
    none; a class or a scoped name such as ``'mmdet.DetDataPreprocessor'`` gives its last
    part)."""
    kind = (dp_cfg or {}).get('type', PLAIN)
    return (kind if isinstance(kind, str) else kind.__name__).split('.')[-1]


def input_scale_of(dp_cfg: Optional[dict]) -> Optional[float]:
    """The ``input_scale`` of a :class:`ScaledInputDataPreprocessor` config, else None."""
    if preprocessor_type(dp_cfg) != SCALED:
        return None
    return float(dp_cfg.get('input_scale', 1.0))


def plain_preprocessor(dp_cfg: Optional[dict]) -> ConfigDict:
    """``dp_cfg`` (None: the defaults) without its resize: a ``ScaledInputDataPreprocessor``
    becomes the ``DetDataPreprocessor`` it extends; any other config is returned as a copy."""
    dp = ConfigDict(copy.deepcopy(dp_cfg) if dp_cfg else dict(type=PLAIN))
    if preprocessor_type(dp) == SCALED:
        dp.type = PLAIN
        dp.pop('input_scale', None)
    return dp
