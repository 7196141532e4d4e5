"""How long `bnexp train CONFIG --smoke` takes for every shipped config, against
TensorFlow's own import time (the target: within the import plus 3 s per smoke run).

    python benchmarks/smoke.py [--configs configs/d2l_lenet_bn.yaml ...] [--repeats 1]

Each config's smoke sweep (every grid cell on its first seed, one epoch of three
batches) runs through the installed script into a temp folder, end to end, process
start included; `python -c "import tensorflow"` is timed between them as the
reference, and the table gives each config's time over the median import time, per
smoke run. The XLA cache is whatever this machine has: run the script twice to see
the warm case (what a CI machine sees from the second smoke run of a model on).
Configs whose data is not on the machine (exit 2: MNIST) are listed as skipped.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 3.0  # seconds per smoke run beyond TensorFlow's import


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", type=Path,
                        default=sorted((ROOT / "configs").rglob("*.yaml")))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    args.configs = [c.resolve() for c in args.configs]  # relative to here or absolute
    exe = str(Path(sys.executable).with_name("bnexp"))
    imports, rows, skipped = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            times = []
            for i in range(args.repeats):
                imports.append(timed([sys.executable, "-c", "import tensorflow"])[0])
                runs_dir = Path(tmp) / f"{config.stem}_{len(rows)}_{i}"
                seconds, done = timed([exe, "train", str(config), "--smoke", "--jobs", "1",
                                       "--runs-dir", str(runs_dir)])
                if done.returncode == 2:  # its data is not on this machine (MNIST)
                    break
                if done.returncode != 0:
                    sys.exit(f"{config}: exit {done.returncode}\n{done.stderr[-1500:]}")
                times.append(seconds)
            if not times:
                why = (done.stderr.strip().splitlines() or ["exit 2"])[-1][:150]
                skipped.append(f"{config.relative_to(ROOT)}: {why}")
                continue
            n = len(done.stdout.split())  # the run folders, one per line
            rows.append((config.relative_to(ROOT), n, statistics.median(times)))
            print(rows[-1], file=sys.stderr, flush=True)
    tf_import = statistics.median(imports)
    print(f"TensorFlow import: {tf_import:.2f} s (median of {len(imports)})")
    print(f"{'config':<52} {'runs':>4} {'seconds':>8} {'beyond import / run':>20}")
    worst = 0.0
    for config, n, seconds in rows:
        beyond = (seconds - tf_import) / n
        worst = max(worst, beyond)
        print(f"{str(config):<52} {n:>4} {seconds:>8.2f} {beyond:>19.2f}s")
    for line in skipped:
        print(f"skipped {line}")
    print(f"\nworst: {worst:.2f} s per smoke run beyond the import "
          f"({'within' if worst <= BUDGET else 'over'} the {BUDGET:g} s target)")


if __name__ == "__main__":
    main()
