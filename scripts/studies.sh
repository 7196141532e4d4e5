#!/usr/bin/env bash
# docs/results.md's studies: run the studies in configs/studies/ and regenerate docs/results/.
#   bash scripts/studies.sh run [STUDY ...]      train (skips finished runs; resumes)
#   bash scripts/studies.sh results [STUDY ...]  compare tables and plots -> docs/results/
#   bash scripts/studies.sh [STUDY ...]          both
# STUDY is a folder name under configs/studies (default: all). Runs go to
# runs/studies/STUDY. The whole set takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/bnexp ] && PATH="$PWD/.venv/bin:$PATH"
phase=all
case "${1:-}" in run|results) phase=$1; shift ;; esac
studies=("$@")
[ ${#studies[@]} -eq 0 ] && studies=(ioffe geron d2l lr momentum use_bias ghost precision)
jobs=${BNEXP_JOBS:-0}

run() {
  for config in configs/studies/"$1"/*.yaml; do
    bnexp train "$config" --runs-dir "runs/studies/$1" --jobs "$jobs"
  done
}

results() {
  local runs="runs/studies/$1" out="docs/results/$1" by=() args=() metrics=(test_acc)
  case $1 in
    d2l)      by=(--by model.bn.impl --by model.bn.placement)
              metrics=(test_acc train_acc train_loss) ;;
    geron)    by=(--by model.bn.placement); args=(--baseline model.bn.placement=none)
              metrics=(val_acc test_acc) ;;
    ioffe)    args=(--baseline model.bn.placement=none) ;;
    lr)       by=(--by model.bn.placement --by optimizer.learning_rate)
              args=(--baseline model.bn.placement=none) ;;
    momentum) metrics=(test_acc test_acc_batchstats) ;;
    use_bias) args=(--baseline model.use_bias=true) ;;
    ghost)    args=(--baseline model.bn.virtual_batch_size=256)
              metrics=(test_acc train_acc train_loss) ;;
    precision) args=(--baseline train.precision=float32)
              metrics=(test_acc test_acc_batchstats train_loss) ;;
  esac
  mkdir -p "$out"
  for metric in "${metrics[@]}"; do
    for fmt in csv markdown; do
      bnexp compare "$runs" "${by[@]}" "${args[@]}" --metric "$metric" --format "$fmt" \
        --out "$out/$metric.${fmt/markdown/md}"
    done
  done
  bnexp plot runs "$runs" "${by[@]}" --out "$out"
  if [ "$1" = lr ]; then
    bnexp plot sweep "$runs" --x optimizer.learning_rate --by model.bn.placement \
      --metric test_acc --out "$out/sweep.png"
  fi
}

for study in "${studies[@]}"; do
  [ -d "configs/studies/$study" ] || { echo "no such study: configs/studies/$study" >&2; exit 2; }
  if [ "$phase" != results ]; then run "$study"; fi
  if [ "$phase" != run ]; then results "$study"; fi
done
