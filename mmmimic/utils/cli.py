"""Small parsers shared by the command-line tools."""
from typing import Tuple


def parse_shape(shape: str) -> Tuple[int, int]:
    """'1000x1500' -> (1000, 1500); a clear error for anything else."""
    try:
        h, w = (int(v) for v in shape.lower().split('x'))
    except ValueError as e:
        raise ValueError(f'--shapes: expected HxW such as 1000x1500, got {shape!r}') from e
    return h, w
