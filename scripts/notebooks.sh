#!/usr/bin/env bash
# The notebooks table (docs/results.md#the-five-notebooks): every config in
# configs/notebooks/ over seeds 0, 1, 2 on Fashion-MNIST (the MNIST notebooks too: Debian
# packages no MNIST), then compare tables -> docs/results/notebooks/STEM.{csv,md}.
#   bash scripts/notebooks.sh [STEM ...]     (default: all but 001 at full size)
# 001 resizes to 224x224 (3 GB, hours per epoch here): it runs on a 1,000-image subset
# (BNEXP_NB001_LIMIT) for its 10 epochs. Runs go to runs/notebooks/STEM.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/bnexp ] && PATH="$PWD/.venv/bin:$PATH"
stems=("$@")
if [ ${#stems[@]} -eq 0 ]; then
  for config in configs/notebooks/*.yaml; do stems+=("$(basename "$config" .yaml)"); done
fi
out=docs/results/notebooks
mkdir -p "$out"
for stem in "${stems[@]}"; do
  args=(--set "sweep.seeds=[0, 1, 2]" --set data.dataset=fashion_mnist --jobs "${BNEXP_JOBS:-1}")
  case $stem in
    001_*) args+=(--set "data.limit=${BNEXP_NB001_LIMIT:-1000}" --set data.test_limit=1000) ;;
  esac
  bnexp train "configs/notebooks/$stem.yaml" --runs-dir "runs/notebooks/$stem" "${args[@]}"
  for fmt in csv markdown; do
    bnexp compare "runs/notebooks/$stem" --by name --metric test_acc --format "$fmt" \
      --out "$out/$stem.test_acc.${fmt/markdown/md}"
    bnexp compare "runs/notebooks/$stem" --by name --metric train_acc --format "$fmt" \
      --out "$out/$stem.train_acc.${fmt/markdown/md}"
  done
done
