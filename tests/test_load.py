"""Load: eight `bnexp train` processes write into one runs folder while `compare` reads it
in a loop. No run is lost, no read is torn, nothing raises."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.cli import app

pytestmark = pytest.mark.slow

PROCESSES = 8
CONFIG = ("name: load\ndata: {dataset: synthetic, batch_size: 50, validation_size: 100, "
          "limit: 400}\nmodel: {arch: mlp, hidden: [32]}\n"
          "train: {epochs: 3, steps_per_call: 2, jit_compile: false}\n")  # XLA: not the point


def test_eight_processes_train_into_one_folder_while_compare_reads_it(tmp_path):
    cfg = tmp_path / "load.yaml"
    cfg.write_text(CONFIG)
    runs_dir = tmp_path / "runs"
    exe = str(Path(sys.executable).with_name("bnexp"))
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
    logs = [(tmp_path / f"out{seed}", tmp_path / f"err{seed}") for seed in range(PROCESSES)]
    procs = []
    for seed, (out, err) in enumerate(logs):  # output to files: no pipe can fill and block
        with open(out, "w") as stdout, open(err, "w") as stderr:
            procs.append(subprocess.Popen(
                [exe, "train", str(cfg), "--runs-dir", str(runs_dir), "--set", f"seed={seed}"],
                stdout=stdout, stderr=stderr, env=env))
    reads, seen = 0, set()
    deadline = time.monotonic() + 600
    while any(p.poll() is None for p in procs):
        assert time.monotonic() < deadline, "the eight runs did not finish in 10 minutes"
        rows = _compare(runs_dir)
        if rows is not None:
            reads += 1
            seen |= {row["status"] for row in rows}
        time.sleep(0.05)
    for p, (out, err) in zip(procs, logs, strict=True):
        assert p.wait() == 0, err.read_text()[-2000:]
        (line,) = out.read_text().splitlines()  # each process prints its one run folder
        assert Path(line).parent == runs_dir
    rows = _compare(runs_dir)
    assert sorted(row["seed"] for row in rows) == list(range(PROCESSES))
    assert {row["status"] for row in rows} == {"completed"}
    assert reads >= 5 and "running" in seen, (reads, seen)


def _compare(runs_dir: Path) -> list[dict] | None:
    """compare --runs as JSON, or None before any run folder exists; never a warning."""
    result = CliRunner().invoke(app, ["compare", str(runs_dir), "--runs", "--format", "json"])
    if not runs_dir.exists() or not any(runs_dir.glob("*/summary.json")):
        assert result.exit_code in (0, 2), result.output
        return None
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr  # no torn line, no unreadable folder
    return json.loads(result.stdout)
