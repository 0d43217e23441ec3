#!/usr/bin/env bash
# The one install recipe for Enclave's Python environment. The Makefile (`make venv`, so CI),
# the container image (deploy/docker/Dockerfile) and the single-VM install (docs/deploy.md) all
# run this script, so the three cannot drift apart. Do not repeat its steps elsewhere.
#
#   deploy/install.sh --venv DIR [--python PY] [--extras dev] [--editable]
#                     [--torch-index-url URL] [--cpu-torch] [--src DIR] [--dry-run]
#
# Steps, in this order (docs/parsing.md, "Install recipe for PDFs"):
#   1. create DIR as a virtualenv with PY (default python3) unless it exists; upgrade pip
#   2. torch==2.13.0 FIRST: a bare or open torch requirement would pull a CUDA build of several
#      GB. --torch-index-url points pip at a CPU wheel index (the image uses PyTorch's CPU
#      index; a mirror in an air-gapped site); without it pip takes what its configuration
#      finds (on the project's build machines: the CPU wheel on local disk).
#   3. the project from --src (default: this repository), with --extras, editable or not
#   4. unstructured-inference==1.6.14 with --no-deps: unstructured imports it for every PDF,
#      and its declared dependencies (timm -> torchvision) break transformers beside torch
#      2.13.0 CPU. pyproject.toml lists what its import chain needs instead.
#   5. export the default embedding model to ONNX into DIR/share/enclave/models
#      (`ingest prepare-model`): the default backend runs it, so no process exports at run time
#   6. check: torch is 2.13.0 (--cpu-torch: a build without CUDA), and unstructured's PDF
#      partitioner imports.
#
# System packages are not installed here (the image installs them in its runtime stage, the
# VM's administrator with apt): deploy/runtime-packages.txt lists them.
set -euo pipefail

TORCH_VERSION=2.13.0
UNSTRUCTURED_INFERENCE_VERSION=1.6.14

venv=""
python=python3
extras=""
editable=0
torch_index_url=""
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dry_run=0
cpu_torch=0

usage() { sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="${2:?--venv needs a directory}"; shift 2 ;;
    --python) python="${2:?--python needs an interpreter}"; shift 2 ;;
    --extras) extras="${2?--extras needs a list}"; shift 2 ;;
    --editable) editable=1; shift ;;
    --torch-index-url) torch_index_url="${2:?--torch-index-url needs a URL}"; shift 2 ;;
    --cpu-torch) cpu_torch=1; shift ;;
    --src) src="${2:?--src needs a directory}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$venv" ] || { echo "install.sh: --venv DIR is required" >&2; usage; }

run() {
  if [ "$dry_run" = 1 ]; then  # one line per command, each argument single-quoted
    local arg q="'" out=""
    for arg in "$@"; do out+="'${arg//$q/$q\\$q$q}' "; done
    echo "$out"
  else
    "$@"
  fi
}

py="$venv/bin/python"
if [ "$dry_run" = 1 ] || [ ! -x "$py" ]; then
  run "$python" -m venv "$venv"
fi
run "$py" -m pip install -q --upgrade pip

# 2) torch first, pinned exactly
if [ -n "$torch_index_url" ]; then
  run "$py" -m pip install -q --index-url "$torch_index_url" "torch==$TORCH_VERSION"
else
  run "$py" -m pip install -q "torch==$TORCH_VERSION"
fi

# 3) the project
target="$src"
[ -n "$extras" ] && target="$src[$extras]"
if [ "$editable" = 1 ]; then
  run "$py" -m pip install -q -e "$target"
else
  run "$py" -m pip install -q "$target"
fi

# 4) PDF parsing: unstructured-inference without its declared dependencies
run "$py" -m pip install -q --no-deps "unstructured-inference==$UNSTRUCTURED_INFERENCE_VERSION"

# 5) the embedding backend's ONNX export (of $ENCLAVE_CONFIG's model, else the default), made once
run "$py" -m ingest.cli prepare-model

# 6) what the steps promise
run "$py" -c "import torch; v = torch.__version__; assert v.split('+')[0] == '$TORCH_VERSION', v; \
assert not ($cpu_torch and torch.version.cuda), 'a CUDA build of torch: ' + v; \
import unstructured_inference, unstructured.partition.pdf; \
print('install.sh: torch', v, '+ unstructured PDF partitioner OK')"
