"""What the probes (diagnostics.grad_norms, weight_norms, predictiveness) cost: training
throughput with every probe off against the code before the probes existed, and with
each probe on, interleaved, in one run of this script.

    python benchmarks/probes_cost.py [--before REF] [--repeats 5]

REF (default 5bf75c8~1, the commit before the probes) is checked out into a temporary git
worktree; each arm is `python -m bnexp train` on the same config (d2l BN-LeNet, 10,000
Fashion-MNIST training examples, 3 epochs, batch 256) with that tree first on
PYTHONPATH. The number is the median over repeats of the mean samples/s of epochs 2-3
(metrics.csv's samples_per_sec: training steps only, compilation in epoch 1 left
out), and the wall time of the whole run (probes run between the steps, so they show
there). Arms run in turn (before, off, grad, weight, predictiveness, before, ...),
so a drift of the machine falls on every arm alike.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """name: probes
data: {{batch_size: 256, validation_size: 0, limit: 10000}}
model: {{arch: lenet, activation: sigmoid}}
train: {{epochs: 3}}
diagnostics: {{{diagnostics}}}
"""
ARMS = {"before": "", "off": "", "grad_norms": "grad_norms: true, every_steps: 10",
        "weight_norms": "weight_norms: true",
        "predictiveness": "predictiveness: true, every_steps: 10"}


def run(tree: Path, diagnostics: str, work: Path) -> tuple[float, float]:
    """(samples/s of the epochs after the first, wall seconds) of one run of `tree`."""
    config = work / "probes.yaml"
    config.write_text(CONFIG.format(diagnostics=diagnostics))
    runs = work / "runs"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-m", "bnexp", "train", str(config), "--runs-dir",
                           str(runs), "--force"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    with open(folder / "metrics.csv") as f:
        speeds = [float(row["samples_per_sec"]) for row in csv.DictReader(f)][1:]
    wall = json.loads((folder / "summary.json").read_text())["wall_seconds"]
    for path in sorted(runs.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    return statistics.mean(speeds), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="5bf75c8~1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before),
                        args.before], check=True, capture_output=True)
        try:
            results = {arm: [] for arm in ARMS}
            for _ in range(args.repeats):
                for arm, diagnostics in ARMS.items():
                    tree = before if arm == "before" else ROOT
                    results[arm].append(run(tree, diagnostics, Path(tmp)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(before)], check=False)
    base_speed = statistics.median(s for s, _ in results["before"])
    base_wall = statistics.median(w for _, w in results["before"])
    print(f"{'arm':16} {'samples/s':>10} {'ratio':>7} {'wall s':>8} {'ratio':>7}")
    for arm, values in results.items():
        speed = statistics.median(s for s, _ in values)
        wall = statistics.median(w for _, w in values)
        print(f"{arm:16} {speed:10.0f} {speed / base_speed:7.3f} {wall:8.2f} "
              f"{wall / base_wall:7.3f}")


if __name__ == "__main__":
    main()
