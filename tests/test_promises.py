"""README promises checked through the installed `bnexp` script, stdout and stderr apart:
a diverged run exits 0, a run cut short fails with exit 1 (a real cause, a full disk
is in test_full_disk.py), SIGTERM interrupts with exit 130 and the same command finishes
the sweep, and stdout carries only run folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BNEXP = Path(sys.executable).with_name("bnexp")
ENV = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
TINY = ("data: {dataset: synthetic, batch_size: 50, validation_size: 100, limit: 400}\n"
        "model: {arch: mlp, hidden: [16]}\n")


def bnexp(*args, timeout=300):
    return subprocess.run([str(BNEXP), *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def summary_of(folder: str) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())


def test_a_diverging_run_exits_0_and_says_diverged(tmp_path):
    cfg = tmp_path / "d.yaml"
    cfg.write_text("data: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
                   "model: {arch: mlp, activation: relu, bn: {placement: none}}\n"
                   "optimizer: {learning_rate: 1.0e6}\ntrain: {epochs: 3}\n")
    out = bnexp("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    (folder,) = out.stdout.splitlines()  # stdout: the run folder and nothing else
    assert summary_of(folder)["status"] == "diverged"
    assert "diverged" in out.stderr


def test_sigterm_interrupts_with_130_and_the_same_command_finishes_the_sweep(tmp_path):
    """SIGTERM once the first epoch's row is written (an event, not a delay): exit 130,
    the run interrupted; the same command again resumes it and runs the rest."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(TINY + "train: {epochs: 40, steps_per_call: 1}\nsweep: {seeds: [0, 1]}\n")
    runs_dir = tmp_path / "runs"
    with open(tmp_path / "out", "w") as stdout, open(tmp_path / "err", "w") as stderr:
        proc = subprocess.Popen([str(BNEXP), "train", str(cfg), "--runs-dir", str(runs_dir),
                                 "--jobs", "1"], stdout=stdout, stderr=stderr, env=ENV)
    deadline = time.monotonic() + 120
    while not any(len(p.read_text().splitlines()) > 1 for p in runs_dir.glob("*/metrics.csv")):
        assert proc.poll() is None and time.monotonic() < deadline, "no epoch within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, (tmp_path / "err").read_text()[-2000:]
    (first,) = list(runs_dir.iterdir())
    assert summary_of(first)["status"] == "interrupted"
    again = bnexp("train", cfg, "--runs-dir", runs_dir)
    assert again.returncode == 0, again.stderr
    folders = again.stdout.splitlines()
    assert len(folders) == 2 and str(first) in folders
    assert all(summary_of(f)["status"] == "completed" for f in folders)
    assert len(summary_of(str(first))["resumed"]) == 1


def test_a_diverging_cell_does_not_stop_the_other_cells_of_a_sweep(tmp_path):
    cfg = tmp_path / "g.yaml"
    cfg.write_text("data: {dataset: synthetic, batch_size: 50, validation_size: 200}\n"
                   "model: {arch: mlp, activation: relu, bn: {placement: none}}\n"
                   "train: {epochs: 2}\n"
                   "sweep: {grid: {optimizer.learning_rate: [1.0e6, 0.1]}}\n")
    out = bnexp("train", cfg, "--runs-dir", tmp_path / "runs", "--jobs", "1")
    assert out.returncode == 0, out.stderr
    folders = out.stdout.splitlines()
    assert [summary_of(f)["status"] for f in folders] == ["diverged", "completed"]
    assert summary_of(folders[1])["epochs_done"] == 2
