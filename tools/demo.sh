#!/usr/bin/env bash
# One command: install what is missing, then run the Fashion-MNIST DKS demo
# (prepare data, train, score every branch, strip, test with vanilla
# MMPretrain). Options go to tools/demo.py (--epochs, --train-size, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs (or refreshes) mmdks from this tree and anything missing.
make install PYTHON=python3
# Fashion-MNIST from Debian's package where this script may install it (as
# root, with apt-get); elsewhere tools/demo.py downloads the files. mmdks
# itself never installs system packages.
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null; then
    echo "installing Debian's dataset-fashion-mnist with apt-get"
    apt-get install -y dataset-fashion-mnist >/dev/null || true
fi
python3 tools/demo.py "$@"
