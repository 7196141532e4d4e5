#!/usr/bin/env bash
# Set up bnexp on a fresh Debian machine, then run one job:
#   bash scripts/bootstrap.sh experiment   # d2l BN-LeNet on the full Fashion-MNIST
#   bash scripts/bootstrap.sh test         # lint and the whole test suite (what CI runs)
#   bash scripts/bootstrap.sh setup        # only install
# Installs what it needs: Debian's dataset-fashion-mnist (where apt is available), for
# `test` Debian's chromium (the report's browser tests), a virtual environment in .venv,
# and bnexp with its dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-test}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 0
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  apt_install dataset-fashion-mnist
fi

# the report's browser tests open its page in headless Chromium (tests/test_report.py)
if [ "$job" = test ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium || echo "chromium could not be installed: the browser checks of" \
    "tests/test_report.py will be skipped" >&2
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"

# Put `bnexp` on PATH: a link in /usr/local/bin where we may write there (root), without
# replacing a different bnexp; otherwise say how to reach it.
link=/usr/local/bin/bnexp
target="$(pwd)/.venv/bin/bnexp"
if [ -w /usr/local/bin ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
  ln -sfn "$target" "$link"
elif ! command -v bnexp >/dev/null 2>&1; then
  echo "bnexp is installed in .venv: run 'source .venv/bin/activate' to put it on PATH" >&2
fi

case "$job" in
  setup) exit 0 ;;
  experiment) exec .venv/bin/bnexp train configs/d2l_lenet_bn.yaml ;;
  test) .venv/bin/ruff check . && exec .venv/bin/pytest -q -n 2 --dist loadgroup ;;
  *) echo "usage: bash scripts/bootstrap.sh experiment|test|setup" >&2; exit 2 ;;
esac
