#!/usr/bin/env bash
# Create .venv and install Dreamloom into it (with the given extras). Idempotent.
# Torch, by machine (DREAMLOOM_TORCH overrides the spec, DREAMLOOM_TORCH_CPU_INDEX the index):
# - an NVIDIA GPU (nvidia-smi runs): the default build from the default index, which ships CUDA;
# - CPU only: the CPU build from PyTorch's own CPU wheel index, if it answers within 5 s (the
#   default index's Linux torch is the CUDA build, several GB of nvidia packages); else the
#   default index (whose torch may then be the CUDA build; it runs on the CPU all the same).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
torch_pin="torch==2.13.0"
cpu_index=${DREAMLOOM_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
answers_in_5s() {  # does this index answer within 5 seconds (name lookup included)?
  local limit=()
  command -v timeout >/dev/null 2>&1 && limit=(timeout 5)
  ${limit[@]+"${limit[@]}"} .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).read(1)
PY
}
run() {  # DREAMLOOM_INSTALL_DRY_RUN=1: print the pip commands instead (the tests use it)
  if [ -n "${DREAMLOOM_INSTALL_DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi
}
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  index=()
  if [ -n "${DREAMLOOM_TORCH:-}" ]; then
    spec="$DREAMLOOM_TORCH"; why="DREAMLOOM_TORCH"
  elif nvidia-smi >/dev/null 2>&1; then
    spec="$torch_pin"; why="an NVIDIA GPU: the CUDA build"
  elif answers_in_5s "$cpu_index"; then
    spec="$torch_pin"; why="no NVIDIA GPU: the CPU build from $cpu_index"
    index=(--index-url "$cpu_index")
  else
    spec="$torch_pin"; why="no NVIDIA GPU, and $cpu_index did not answer: the default index"
  fi
  echo "installing $spec ($why) ..." >&2
  run "${pip[@]}" install ${index[@]+"${index[@]}"} "$spec"
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
run "${pip[@]}" install -e "$target"
