#!/usr/bin/env bash
# docs/results.md's studies: run the studies in configs/studies/ and regenerate docs/results/.
#   bash scripts/studies.sh run [STUDY ...]      train (skips finished runs; resumes)
#   bash scripts/studies.sh results [STUDY ...]  compare tables and plots -> docs/results/
#   bash scripts/studies.sh [STUDY ...]          both
# STUDY is a folder name under configs/studies (default: all). Runs go to
# runs/studies/STUDY. The whole set takes about three hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/bnexp ] && PATH="$PWD/.venv/bin:$PATH"
phase=all
case "${1:-}" in run|results) phase=$1; shift ;; esac
studies=("$@")
[ ${#studies[@]} -eq 0 ] && studies=(ioffe geron d2l lr momentum use_bias ghost precision
  groupnorm renorm dropout frankle skipinit weight_decay grad_explosion noisy_bn domain_shift
  large_lr)
jobs=${BNEXP_JOBS:-0}

run() {
  for config in configs/studies/"$1"/*.yaml; do
    bnexp train "$config" --runs-dir "runs/studies/$1" --jobs "$jobs"
  done
}

results() {
  local runs="runs/studies/$1" out="docs/results/$1" by=() args=() metrics=(test_acc) band=ci
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
    groupnorm|renorm) by=(--by model.bn.kind --by data.batch_size)
              args=(--baseline model.bn.kind=batch) ;;
    dropout)  args=(--baseline model.dropout.placement=after_bn)
              metrics=(test_acc test_acc_batchstats) ;;
    frankle)  args=(--baseline train.trainable=all) ;;
    skipinit) by=(--by label --by optimizer.learning_rate); args=(--baseline label=bn)
              metrics=(test_acc train_loss); band=std ;;  # groups of 1-2 completed runs
    weight_decay) args=(--baseline train.l2=0.0) ;;
    grad_explosion) metrics=() ;;  # its table is the probes' (below)
    noisy_bn) by=(--by name); args=(--baseline name=santurkar-bn)
              metrics=(test_acc train_loss) ;;
    domain_shift) domain_shift ;;  # its table of shifts: scripts/probe_tables.py
    large_lr) by=(--by model.bn.placement --by optimizer.learning_rate)
              args=(--baseline model.bn.placement=none) ;;
  esac
  mkdir -p "$out"
  for metric in "${metrics[@]}"; do
    file=${metric//\//_}  # test_acc@noise=80/adapt -> test_acc@noise=80_adapt
    for fmt in csv markdown; do
      bnexp compare "$runs" "${by[@]}" "${args[@]}" --metric "$metric" --format "$fmt" \
        --out "$out/$file.${fmt/markdown/md}"
    done
  done
  bnexp plot runs "$runs" "${by[@]}" --band "$band" --out "$out"
  case $1 in  # curves of a single point
    grad_explosion) rm -f "$out/curves.png" "$out/gap.png" ;;  # one epoch of two steps
    frankle) rm -f "$out/steps.png" "$out/steps_by_group.csv" ;;  # steps.csv: step 0 only
  esac
  case $1 in  # the probes' numbers per group: scripts/probe_tables.py
    grad_explosion|dropout|weight_decay|frankle|noisy_bn|domain_shift)
      python scripts/probe_tables.py "$1" ;;
  esac
  case $1 in
    lr|large_lr) bnexp plot sweep "$runs" --x optimizer.learning_rate --by model.bn.placement \
                   --metric test_acc --out "$out/sweep.png" ;;
    groupnorm)   bnexp plot sweep "$runs" --x data.batch_size --by model.bn.kind \
                   --metric test_error --out "$out/sweep.png" ;;
  esac
}

# domain_shift: every trained run evaluated (bnexp eval, appended to its eval.csv) on the
# clean, noisy, rotated and low-contrast test sets with each kind of statistics
domain_shift() {
  local runs=runs/studies/domain_shift
  for shift in none noise=80 rotate=90 contrast=0.3; do
    for stats in population batch adapt; do
      if [ "$shift" = none ]; then bnexp eval "$runs" --stats "$stats" >/dev/null
      else bnexp eval "$runs" --shift "$shift" --stats "$stats" >/dev/null; fi
    done
  done
}

for study in "${studies[@]}"; do
  [ -d "configs/studies/$study" ] || { echo "no such study: configs/studies/$study" >&2; exit 2; }
  if [ "$phase" != results ]; then run "$study"; fi
  if [ "$phase" != run ]; then results "$study"; fi
done
