#!/usr/bin/env bash
# Set up, then run the built-in default job: the default AC-GAN recipe on Fashion-MNIST, judged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/condgan quickstart "$@"
