"""How long `bnexp compare` takes over 1,000 run folders (the target: under 2 s), or
10,000 (under 3 s).

    python benchmarks/compare_speed.py [--runs 1000] [--repeats 5]

Writes the run folders (as bnexp writes them: config.yaml, metrics.csv, summary.json
with 10 epochs each) into a temp folder, then times the real command end to end,
process start included, and `bnexp --help` as the reference of a bare start.
Prints the medians and the ratio of compare's time to the 2 s budget.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bnexp import config, runs  # noqa: E402

BUDGETS = {1000: 2.0, 10000: 3.0}  # seconds, by number of run folders


def write_runs(runs_dir: Path, n: int) -> None:
    rng = random.Random(0)
    placements, rates = ["none", "before", "after"], [0.01, 0.1, 0.3, 1.0]
    for i in range(n):
        raw = {"name": "bench", "seed": i // 12, "model": {"bn": {"placement": placements[i % 3]}},
               "optimizer": {"learning_rate": rates[i // 3 % 4]}}
        cfg = config.validate(raw, "bench")
        folder = runs.RunFolder(runs.create(runs_dir, f"bench_{i}"))
        folder.write_config(config.to_yaml(cfg))
        rows = []
        for epoch in range(1, 11):
            acc = min(0.95, 0.5 + 0.04 * epoch + rng.gauss(0, 0.02))
            row = {"epoch": epoch, "train_loss": 1 - acc, "train_acc": acc, "val_loss": 1 - acc,
                   "val_acc": acc, "test_loss": 1 - acc, "test_acc": acc, "seconds": 5.0,
                   "samples_per_sec": 10000.0, "eval_seconds": 0.3}
            rows.append(row)
            folder.append_metrics(row)
        folder.write_summary({
            "status": "completed", "seed": cfg.seed, "config_hash": config.config_hash(cfg),
            "config": cfg.model_dump(exclude={"sweep"}), "epochs_done": 10,
            "final": {k: v for k, v in rows[-1].items() if k != "epoch"},
            "best": runs.best_of(rows), "started": "2026-01-01T00:00:00"})


def timed(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    budget = BUDGETS.get(args.runs) or BUDGETS[min(BUDGETS, key=lambda n: abs(n - args.runs))]
    exe = str(Path(sys.executable).with_name("bnexp"))
    with tempfile.TemporaryDirectory() as tmp:
        write_runs(Path(tmp), args.runs)
        bare = timed([exe, "--help"], args.repeats)
        table = timed([exe, "compare", tmp, "--format", "csv"], args.repeats)
        baseline = timed([exe, "compare", tmp, "--format", "csv", "--baseline",
                          "model.bn.placement=none"], args.repeats)
    print(f"runs: {args.runs}, median of {args.repeats}")
    print(f"bnexp --help              {bare:6.2f} s")
    print(f"bnexp compare             {table:6.2f} s  ({table / budget:.2f} of the {budget:g} s "
          "budget)")
    print(f"bnexp compare --baseline  {baseline:6.2f} s  ({baseline / budget:.2f} of the budget)")
    print("\nmeasure,seconds,ratio_to_budget")
    for name, value in (("help", bare), ("compare", table), ("compare_baseline", baseline)):
        print(f"{name},{value:.3f},{value / budget:.3f}")


if __name__ == "__main__":
    main()
