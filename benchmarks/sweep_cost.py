"""How the cost of a sweep grows with its number of runs, and where a run's time goes.

    python benchmarks/sweep_cost.py [--runs 1 4 16 64] [--backends jobs1 jobs2 ray]

Each sweep is the installed `bnexp train` on a config of N short runs (d2l BN-LeNet,
1,000 Fashion-MNIST training examples, 1,000 test examples, one epoch; N seeds), timed
end to end, process start included. From the run folders' summary.json:
  start-up   from the command's start to the first run's start (summary.json's "started",
             to the second): process start, imports
             (TensorFlow), the config and model checks, data load, worker start
  first run  the first run's own wall time: tracing and compiling its steps included
  later run  the median wall time of the other runs: the same model, reusing what the
             first run compiled in its process (bnexp/training/compiled.py)
  per run    the whole command's time over N
Backends: jobs1 (--jobs 1: every run in the bnexp process), jobs2 (--jobs 2: two worker
processes), ray (--backend ray: bnexp starts a local Ray and stops it). The first row,
"cold", is one run on an empty XLA cache (bnexp/xlacache.py): the compile cost of a model
that this machine never trained before; the others share that cache, warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

CONFIG = """name: cost
data: {{batch_size: 256, validation_size: 0, limit: 1000, test_limit: 1000}}
model: {{arch: lenet, activation: sigmoid}}
train: {{epochs: 1}}
sweep: {{seeds: {seeds}}}
"""
BACKENDS = {"jobs1": ["--jobs", "1"], "jobs2": ["--jobs", "2"], "ray": ["--backend", "ray"]}


def sweep(n: int, backend: str, work: Path) -> dict:
    """Run one sweep of n runs; its timings."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / f"cost_{n}_{backend}.yaml"
    config.write_text(CONFIG.format(seeds=list(range(n))))
    runs_dir = work / f"runs_{n}_{backend}"
    exe = str(Path(sys.executable).with_name("bnexp"))
    started = time.time()
    done = subprocess.run([exe, "train", str(config), "--runs-dir", str(runs_dir),
                           *BACKENDS[backend]], capture_output=True, text=True)
    total = time.time() - started
    if done.returncode != 0:
        sys.exit(f"{backend} n={n} failed:\n{done.stderr[-2000:]}")
    summaries = [json.loads(p.read_text()) for p in runs_dir.glob("*/summary.json")]
    summaries.sort(key=lambda s: s["started"])
    walls = [s["wall_seconds"] for s in summaries]
    first_start = datetime.strptime(summaries[0]["started"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    return {"runs": n, "backend": backend, "total": total, "per_run": total / n,
            "startup": first_start - started, "first_run": walls[0],
            "later_run": statistics.median(walls[1:]) if n > 1 else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # every sweep on one XLA cache of its own, empty at first: the first row (one
        # run, --jobs 1) shows a cold cache; the others, what any later sweep of this
        # model on this machine sees
        os.environ["BNEXP_XLA_CACHE"] = str(Path(tmp) / "xla")
        os.environ.pop("TF_XLA_FLAGS", None)
        rows.append({**sweep(1, "jobs1", Path(tmp) / "cold"), "backend": "cold"})
        for n in args.runs:
            for backend in args.backends:  # interleaved: the machine's drift hits all alike
                rows.append(sweep(n, backend, Path(tmp)))
                print(rows[-1], file=sys.stderr, flush=True)
    print(f"{'runs':>5} {'backend':>8} {'total s':>8} {'s/run':>7} {'start-up':>9} "
          f"{'first run':>10} {'later run':>10}")
    for r in rows:
        print(f"{r['runs']:>5} {r['backend']:>8} {r['total']:>8.1f} {r['per_run']:>7.2f} "
              f"{r['startup']:>9.1f} {r['first_run']:>10.2f} {r['later_run']:>10.2f}")
    print("\nruns,backend,total_s,per_run_s,startup_s,first_run_s,later_run_s")
    for r in rows:
        print(f"{r['runs']},{r['backend']},{r['total']:.2f},{r['per_run']:.3f},"
              f"{r['startup']:.2f},{r['first_run']:.3f},{r['later_run']:.3f}")


if __name__ == "__main__":
    main()
