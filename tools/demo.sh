#!/usr/bin/env bash
# One command: install what is missing, then run the Fashion-MNIST DKS demo
# (prepare data, train, score every branch, strip, test with vanilla
# MMPretrain). Options go to tools/demo.py (--epochs, --train-size, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs (or refreshes) mmdks from this tree and anything missing.
make install PYTHON=python3
python3 tools/demo.py "$@"
