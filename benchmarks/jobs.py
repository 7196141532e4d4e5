"""Wall time of a small sweep with --jobs 1 against --jobs 2 (and more), measured in one go.

    python benchmarks/jobs.py [--repeats 3] [--jobs 1 2] [CONFIG] [--set KEY=VALUE ...]

Runs `bnexp train CONFIG --jobs N --runs-dir <fresh temp folder>` for each N, repeats
interleaved (so drift in the machine's load hits every N alike), and prints the
median wall seconds and the speed-up over the first N, as a table and as CSV.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS: list[str] = []  # the config as it ships


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/placement_study.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", dest="sets", action="append", default=None)
    parser.add_argument("--threads-per-job", type=int, nargs="+", default=[0],
                        help="TensorFlow threads of each job (0 = cores / jobs); several "
                        "values are measured side by side")
    args = parser.parse_args()
    sets = args.sets if args.sets is not None else DEFAULT_SETS
    exe = Path(sys.executable).with_name("bnexp")
    settings = [(n, t) for n in args.jobs for t in args.threads_per_job
                if n > 1 or t == args.threads_per_job[0]]
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    for repeat in range(args.repeats):
        for n, threads in settings:
            env = {**os.environ, "BNEXP_THREADS_PER_JOB": str(threads)} if threads else None
            with tempfile.TemporaryDirectory() as runs_dir:
                cmd = [str(exe), "train", args.config, "--jobs", str(n), "--runs-dir", runs_dir]
                for item in sets:
                    cmd += ["--set", item]
                start = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
                times[(n, threads)].append(time.perf_counter() - start)
            print(f"repeat {repeat + 1}: --jobs {n}, threads/job {threads or 'auto'}: "
                  f"{times[(n, threads)][-1]:.1f} s", file=sys.stderr)
    reference = statistics.median(times[settings[0]])
    print(f"{'jobs':>4}  {'threads':>7}  {'median s':>9}  {'speed-up':>8}  runs (s)")
    for n, threads in settings:
        median = statistics.median(times[(n, threads)])
        runs = ", ".join(f"{t:.1f}" for t in times[(n, threads)])
        print(f"{n:>4}  {threads or 'auto':>7}  {median:>9.1f}  {reference / median:>7.2f}x  "
              f"{runs}")
    print("\njobs,threads_per_job,median_seconds,speedup")
    for n, threads in settings:
        median = statistics.median(times[(n, threads)])
        print(f"{n},{threads or 'auto'},{median:.2f},{reference / median:.3f}")


if __name__ == "__main__":
    main()
