#!/usr/bin/env bash
# Install mmmimic and its pinned OpenMMLab stack into the active Python environment.
# Idempotent: re-running installs nothing that is already present at the pinned version.
#
#   bash tools/install.sh            # into the active venv/conda env, else into ./.venv (created)
#   PYTHON=/path/to/python bash tools/install.sh    # into that interpreter's environment
#   WHEELS=/path/to/wheels bash tools/install.sh
#   bash tools/install.sh --deploy   # also the optional `mmmimic[deploy]` extra (onnx, onnxruntime)
#
# mmcv 2.1.0 ships only as a source tarball on PyPI; its C++ ops (RoIAlign, nms, ...) take
# ~15-20 minutes to compile on 2 cores. A prebuilt wheel is taken from $WHEELS (default:
# ../shared/wheels next to the repository) when it exists, otherwise mmcv is built from source.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY=0
for arg in "$@"; do
    case "$arg" in
        --deploy) DEPLOY=1 ;;
        *) echo "[mmmimic install] unknown option: $arg (known: --deploy)" >&2; exit 2 ;;
    esac
done
# Prebuilt wheels: $WHEELS, else ../shared/wheels beside this checkout, else the machine's shared one.
if [ -z "${WHEELS:-}" ]; then
    for d in "$ROOT/../shared/wheels" /work/shared/wheels; do
        if [ -d "$d" ]; then WHEELS="$d"; break; fi
    done
fi
WHEELS="${WHEELS:-$ROOT/../shared/wheels}"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
    PY=python
else
    [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
    PY="$ROOT/.venv/bin/python"
fi

# numpy: an installed numpy 2.x that the pinned stack accepts is kept at its version (no downgrade
# into an existing environment); otherwise the default pin of requirements/constraints.txt is
# installed. NUMPY=<version> bash tools/install.sh installs that version instead.
CONSTRAINTS="$ROOT/requirements/constraints.txt"
NUMPY_DEFAULT="$(sed -n 's/^numpy==//p' "$CONSTRAINTS")"
NUMPY_HAVE="$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
NUMPY_PIN="${NUMPY:-}"
if [ -z "$NUMPY_PIN" ] && [[ "$NUMPY_HAVE" == 2.* ]]; then
    if "$PY" - "$NUMPY_HAVE" "$ROOT/requirements/runtime.txt" <<'PY'
import re, sys
have, runtime = sys.argv[1], open(sys.argv[2]).read()
spec = re.search(r'^numpy\s*(.*)$', runtime, re.M).group(1).split('#')[0].strip()
ver = tuple(int(x) for x in re.findall(r'\d+', have)[:3])
ok = True
for op, bound in re.findall(r'(>=|<=|==|<|>)\s*([\d.]+)', spec):
    b = tuple(int(x) for x in bound.split('.'))
    b = b + (0, ) * (3 - len(b))
    ok &= {'>=': ver >= b, '<=': ver <= b, '==': ver == b, '<': ver < b, '>': ver > b}[op]
sys.exit(0 if ok else 1)
PY
    then
        NUMPY_PIN="$NUMPY_HAVE"
    else
        echo "[mmmimic install] numpy $NUMPY_HAVE is outside the supported range in" \
            "requirements/runtime.txt; installing the default numpy $NUMPY_DEFAULT" >&2
    fi
fi
if [ -n "$NUMPY_PIN" ] && [ "$NUMPY_PIN" != "$NUMPY_DEFAULT" ]; then
    CONSTRAINTS="$(mktemp)"
    trap 'rm -f "$CONSTRAINTS"' EXIT
    sed "s/^numpy==.*/numpy==$NUMPY_PIN/" "$ROOT/requirements/constraints.txt" >"$CONSTRAINTS"
fi
echo "[mmmimic install] numpy: ${NUMPY_PIN:-$NUMPY_DEFAULT} (installed: ${NUMPY_HAVE:-none})"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
echo "[mmmimic install] python: $($PY -c 'import sys; print(sys.executable)')"

# 1. torch first: a plain 'torch' requirement pulled in by another package could fetch a CUDA build.
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    "${PIP[@]}" "torch==$TORCH_VERSION"
fi

# 2. build helpers (mmcv's setup.py imports pkg_resources, removed in setuptools 81).
"${PIP[@]}" -q -r "$ROOT/requirements/build.txt"

# 3. mmcv 2.1.0 with compiled ops.
if "$PY" -c "import mmcv, sys; from mmcv.ops import nms, RoIAlign; sys.exit(0 if mmcv.__version__ == '2.1.0' else 1)" 2>/dev/null; then
    echo "[mmmimic install] mmcv 2.1.0 with ops already installed"
elif [ -d "$WHEELS" ] && ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "[mmmimic install] mmcv 2.1.0 from prebuilt wheel in $WHEELS"
    "${PIP[@]}" --find-links "$WHEELS" --no-index "mmcv==2.1.0" --no-deps
else
    echo "[mmmimic install] building mmcv 2.1.0 from source (about 15-20 min on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" --no-build-isolation "mmcv==2.1.0"
fi

# 4. the rest of the stack, tests, and mmmimic itself (editable). Wheels dir is searched too so
#    pip does not try to replace the installed mmcv with a source build.
FIND_LINKS=()
[ -d "$WHEELS" ] && FIND_LINKS=(--find-links "$WHEELS")
"${PIP[@]}" "${FIND_LINKS[@]}" "torch==$TORCH_VERSION" "mmcv==2.1.0" -r "$ROOT/requirements.txt"
"${PIP[@]}" --no-deps -r "$ROOT/requirements/mim.txt"
"${PIP[@]}" "${FIND_LINKS[@]}" --no-build-isolation --no-deps -e "$ROOT"

# 5. optional: ONNX export + onnxruntime (requirements/deploy.txt, the `mmmimic[deploy]` extra).
if [ "$DEPLOY" = 1 ]; then
    "${PIP[@]}" -r "$ROOT/requirements/deploy.txt"
    "$PY" -c "import onnx, onnxruntime; print(f'[mmmimic install] deploy extra OK: onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}')"
fi

"$PY" - <<'PY'
import mmcv, mmdet, mmengine, torch, numpy, cv2
from mmcv.ops import RoIAlign, nms  # noqa: F401  (compiled ops present)
import mmmimic  # noqa: F401  (registers modules)
if not hasattr(cv2, 'HOGDescriptor'):
    raise SystemExit(f'[mmmimic install] cv2 {cv2.__version__} at {cv2.__file__} lacks HOGDescriptor '
                     '(opencv 5?): pip install --force-reinstall --no-deps '
                     'opencv-python-headless==4.11.0.86 opencv-python==4.11.0.86')
print(f'[mmmimic install] OK: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, numpy {numpy.__version__}, '
      f'opencv {cv2.__version__}')
PY
