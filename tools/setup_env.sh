#!/usr/bin/env bash
# Create or reuse the project-local virtual environment and install the pinned
# CPU stack (see README "Installation").  Safe to re-run: it returns in about a
# second when nothing changed (a stamp keyed by the requirement files).
#
#   bash tools/setup_env.sh [VENV_DIR]        (default: .venv)
#
# Order matters (measured pitfalls of this stack):
#   1. torch/torchvision as a pinned pair (requirements/build.txt);
#   2. setuptools <82 (mmcv's setup.py imports pkg_resources), ninja, wheel;
#   3. mmcv 2.1.0 with ops, built against *that* torch with --no-build-isolation.
#      The built wheel is kept in a folder keyed by the torch version, never in
#      pip's cache (pip would reuse a wheel built for another torch);
#   4. mmengine, mmdet, mmsegmentation, segment-anything, ...;
#   5. the extra SAM families (HQ-SAM, SAM 2: SAM2_BUILD_CUDA=0, built against
#      the installed torch) and this package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${VENV:-$ROOT/.venv}}"
PYTHON="${PYTHON:-python3}"
MMCV_VERSION=2.1.0
WHEEL_ROOT="${MMSAMREFINER_WHEEL_CACHE:-$HOME/.cache/mmsamrefiner/wheels}"

stamp_inputs() {
  cat "$ROOT"/requirements.txt "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh"
}
STAMP_HASH="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.mmsamrefiner-stamp"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_HASH" ]; then
  echo "[setup] environment $VENV is up to date"
  exit 0
fi

t0=$(date +%s)
log() { echo "[setup $(( $(date +%s) - t0 ))s] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

log "installing torch/torchvision (requirements/build.txt)"
"${PIP[@]}" -r "$ROOT/requirements/build.txt"
log "pinning build tools (setuptools>=77.0.3,<82, ninja, wheel)"
"${PIP[@]}" 'setuptools>=77.0.3,<82' ninja wheel 'numpy'

mmcv_ok() {
  "$PY" - "$MMCV_VERSION" <<'PYCHECK' >/dev/null 2>&1
import sys
import mmcv
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
from mmcv.ops import nms  # noqa: F401  (fails if built against another torch)
PYCHECK
}

if mmcv_ok; then
  log "mmcv $MMCV_VERSION with ops already works against this torch"
else
  TORCH_TAG="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
  WHEEL_DIR="$WHEEL_ROOT/torch-$TORCH_TAG"
  mkdir -p "$WHEEL_DIR"
  if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG (about 9 minutes on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-deps \
      --no-build-isolation --no-cache-dir --no-binary mmcv -w "$WHEEL_DIR" "mmcv==$MMCV_VERSION"
  else
    log "reusing mmcv wheel built for torch $TORCH_TAG from $WHEEL_DIR"
  fi
  "${PIP[@]}" --force-reinstall --no-deps "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
  "${PIP[@]}" "mmcv==$MMCV_VERSION"   # its pure-Python dependencies
  mmcv_ok || { echo "[setup] mmcv $MMCV_VERSION ops do not load" >&2; exit 1; }
fi

log "installing the OpenMMLab stack, segment-anything and test tools"
"${PIP[@]}" "mmcv==$MMCV_VERSION" -r "$ROOT/requirements.txt"
log "installing the extra SAM families: HQ-SAM and SAM 2 (requirements/optional.txt)"
SAM2_BUILD_CUDA=0 "${PIP[@]}" --no-build-isolation -r "$ROOT/requirements/optional.txt"
log "installing mmsamrefiner (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

"$PY" -c 'import torch, mmcv, mmengine, mmdet, mmseg, segment_anything, segment_anything_hq, sam2, mmsamrefiner; print("[setup] torch", torch.__version__, "| mmcv", mmcv.__version__, "| mmengine", mmengine.__version__, "| mmdet", mmdet.__version__, "| mmseg", mmseg.__version__, "| mmsamrefiner", mmsamrefiner.__version__)'
echo "$STAMP_HASH" > "$STAMP"
log "done"
