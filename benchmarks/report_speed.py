"""How long `bnexp report` takes over 1,000 run folders (the target: a few seconds; the
budget: 10 s), against `bnexp compare` over the same folders in the same run.

    python benchmarks/report_speed.py [--runs 1000] [--repeats 3]

Writes the run folders as benchmarks/compare_speed.py does (12 groups: placement x
learning rate, 10 epochs each), then times both real commands end to end, process start
included, interleaved. Prints the medians, the ratio of report to compare, and report's
ratio to the budget.
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
sys.path.insert(0, str(ROOT))

from benchmarks.compare_speed import write_runs  # noqa: E402

BUDGET = 10.0  # seconds for 1,000 run folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("bnexp"))
    times: dict[str, list[float]] = {"compare": [], "report": []}
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        runs_dir.mkdir()
        write_runs(runs_dir, args.runs)
        commands = {"compare": [exe, "compare", str(runs_dir), "--format", "csv"],
                    "report": [exe, "report", str(runs_dir), "--out", f"{tmp}/report.html"]}
        for _ in range(args.repeats):  # interleaved: a slow moment hits both
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
        size = Path(f"{tmp}/report.html").stat().st_size
    compare, report = (statistics.median(times[k]) for k in ("compare", "report"))
    print(f"runs: {args.runs}, median of {args.repeats}")
    print(f"bnexp compare  {compare:6.2f} s")
    print(f"bnexp report   {report:6.2f} s  ({report / compare:.1f}x compare; "
          f"{report / BUDGET:.2f} of the {BUDGET:g} s budget; page {size / 1e6:.1f} MB)")
    print("\nmeasure,seconds,ratio")
    print(f"compare,{compare:.3f},1.000\nreport,{report:.3f},{report / compare:.3f}")


if __name__ == "__main__":
    main()
