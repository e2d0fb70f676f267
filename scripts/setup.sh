#!/usr/bin/env bash
# Set up condgan on a fresh machine: Fashion-MNIST and Chromium (Debian packages, when apt-get is
# available and we are root; Chromium renders the report in the page test, tests/test_report_browser.py),
# a virtual environment in .venv, torch, and condgan itself (editable, with the test extras).
# TORCH_SPEC picks the torch build (default: torch==2.13.0, which is a local CPU wheel on the
# project machines; on a GPU machine use e.g. TORCH_SPEC=torch).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "${TORCH_SPEC:-torch==2.13.0}"
# Pin the torch just installed: the test extras pull in torchvision (through pytorch-fid and
# torch-fidelity), and without the pin pip would pick the newest torchvision and replace torch
# with the (CUDA) build that torchvision was made for.
TORCH_PIN="torch==$(.venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null)"
.venv/bin/pip install -q -e ".[test]" "$TORCH_PIN"
