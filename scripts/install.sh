#!/usr/bin/env bash
# Create .venv and install Dreamloom into it (with the given extras). Idempotent.
# Torch: a CPU build unless an NVIDIA GPU is present (DREAMLOOM_TORCH overrides the spec).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ -n "${DREAMLOOM_TORCH:-}" ]; then
    spec="$DREAMLOOM_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    spec="torch"            # the default build ships CUDA
  else
    spec="torch==2.13.0"    # a CPU wheel; an unpinned torch pulls a multi-GB CUDA build
  fi
  echo "installing $spec ..." >&2
  "${pip[@]}" install "$spec"
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
"${pip[@]}" install -e "$target"
