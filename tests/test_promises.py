"""README promises checked through the installed `bnexp` script, stdout and stderr apart:
a diverged run exits 0, a run cut short fails with exit 1 (a real cause, a full disk
is in test_full_disk.py), SIGTERM interrupts with exit 130 and the same command finishes
the sweep, and stdout carries only run folders."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnexp import runs
from tests.helpers import run_bnexp

pytestmark = pytest.mark.slow

BNEXP = Path(sys.executable).with_name("bnexp")
ENV = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
TINY = ("data: {dataset: synthetic, batch_size: 50, validation_size: 100, limit: 400}\n"
        "model: {arch: mlp, hidden: [16]}\n")
TRAIN = "train: {jit_compile: false, "  # each test's train section; XLA is not the point


def bnexp(*args, timeout=300):
    return run_bnexp(*args, timeout=timeout)


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


def train_until_an_epoch(cfg, runs_dir, *args, within=120, runs_with_rows=1):
    """`bnexp train` started in the background (stdout and stderr to files beside
    runs_dir), returned once `runs_with_rows` runs have written their first epoch's row
    (an event, not a delay): (the process, a run folder with that row)."""
    with open(runs_dir.parent / "out", "w") as stdout, open(runs_dir.parent / "err", "w") as err:
        proc = subprocess.Popen([str(BNEXP), "train", str(cfg), "--runs-dir", str(runs_dir),
                                 *args], stdout=stdout, stderr=err, env=ENV)
    deadline = time.monotonic() + within
    while True:
        started = [m.parent for m in runs_dir.glob("*/metrics.csv")
                   if len(m.read_text().splitlines()) > 1]
        if len(started) >= runs_with_rows:
            return proc, started[0]
        assert proc.poll() is None and time.monotonic() < deadline, f"no epoch in {within} s"
        time.sleep(0.05)


def test_sigterm_interrupts_with_130_and_the_same_command_finishes_the_sweep(tmp_path):
    """SIGTERM once the first epoch's row is written (an event, not a delay): exit 130,
    the run interrupted; the same command again resumes it and runs the rest."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(TINY + TRAIN + "epochs: 40, steps_per_call: 1}\nsweep: {seeds: [0, 1]}\n")
    runs_dir = tmp_path / "runs"
    proc, _ = train_until_an_epoch(cfg, runs_dir, "--jobs", "1")
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


def _pids(cfg, runs_dir, *args):
    """(bnexp's pid, the pid recorded by each run) of one `bnexp train`."""
    with open(runs_dir.parent / "out", "w") as stdout, open(runs_dir.parent / "err", "w") as err:
        proc = subprocess.Popen([str(BNEXP), "train", str(cfg), "--runs-dir", str(runs_dir),
                                 *args], stdout=stdout, stderr=err, env=ENV)
    assert proc.wait(timeout=300) == 0, (runs_dir.parent / "err").read_text()[-2000:]
    folders = (runs_dir.parent / "out").read_text().splitlines()
    return proc.pid, [summary_of(f)["pid"] for f in folders]


def test_one_run_or_jobs_1_trains_in_process_and_jobs_0_in_worker_processes(tmp_path):
    """README: a single run, or --jobs 1, trains in the bnexp process; the default
    --jobs 0 runs a sweep in worker processes (one per core, up to the number of runs)."""
    cfg = tmp_path / "j.yaml"
    cfg.write_text(TINY + TRAIN + "epochs: 1}\n")
    (tmp_path / "a").mkdir()
    me, pids = _pids(cfg, tmp_path / "a" / "runs")
    assert pids == [me]
    cfg.write_text(TINY + TRAIN + "epochs: 1}\nsweep: {seeds: [0, 1]}\n")
    (tmp_path / "b").mkdir()
    me, pids = _pids(cfg, tmp_path / "b" / "runs", "--jobs", "1")
    assert pids == [me, me]
    if len(os.sched_getaffinity(0)) < 2:
        return  # one core: --jobs 0 means one job, in-process
    (tmp_path / "c").mkdir()
    me, pids = _pids(cfg, tmp_path / "c" / "runs")
    assert len(pids) == 2 and me not in pids


def test_a_run_whose_worker_dies_fails_alone_and_the_sweep_goes_on(tmp_path):
    """A real failure in a parallel sweep: the worker process training one run is killed
    (SIGKILL, as the kernel's OOM killer does). That run is reported failed, the others
    complete, bnexp exits 1 (no hang waiting for the dead worker); the killed run's folder
    reads interrupted, and the same command again resumes it and exits 0."""
    cfg = tmp_path / "k.yaml"
    cfg.write_text(TINY + TRAIN + "epochs: 30, steps_per_call: 1}\nsweep: {seeds: [0, 1, 2]}\n")
    runs_dir = tmp_path / "runs"
    proc, victim = train_until_an_epoch(cfg, runs_dir, "--jobs", "2", within=180)
    worker = summary_of(str(victim))["pid"]
    assert worker != proc.pid
    os.kill(worker, signal.SIGKILL)
    assert proc.wait(timeout=300) == 1, (tmp_path / "err").read_text()[-2000:]
    err = (tmp_path / "err").read_text()
    assert "worker process died" in err and "Traceback" not in err
    others = [f for f in runs_dir.iterdir() if f != victim]
    assert len(others) == 2 and all(summary_of(str(f))["status"] == "completed" for f in others)
    assert runs.read_record(victim).status == "interrupted"
    again = bnexp("train", cfg, "--runs-dir", runs_dir, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert summary_of(str(victim))["status"] == "completed"
    assert len(summary_of(str(victim))["resumed"]) == 1


def test_a_second_ctrl_c_stops_at_once_with_130_and_no_traceback(tmp_path):
    """Two SIGINTs in a row (an impatient Ctrl-C Ctrl-C) while a run trains: exit 130, one
    line on stderr saying how to finish, no traceback, and the run's folder reads
    interrupted (resumable), as after one Ctrl-C."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY + TRAIN + "epochs: 200, steps_per_call: 1}\n")
    runs_dir = tmp_path / "runs"
    proc, _ = train_until_an_epoch(cfg, runs_dir, "--jobs", "1")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: interrupted; the same command again finishes what is left")
    (folder,) = runs_dir.iterdir()
    assert runs.read_record(folder).status == "interrupted"


def test_a_dataset_that_vanishes_mid_sweep_fails_its_runs_alone(tmp_path):
    """A real failure from outside: the dataset's folder is deleted while a parallel sweep
    trains. The runs already holding their data finish; the run that needs to read it
    afterwards fails with one line naming the folder, bnexp exits 1 with no traceback;
    with the files back, the same command trains only what is missing."""
    from tests.helpers import tiny_mnist, write_idx_folder

    folder = tmp_path / "mnist"
    write_idx_folder(folder, tiny_mnist(n_train=700, n_test=50))
    cfg = tmp_path / "v.yaml"
    cfg.write_text(f"data: {{dataset: mnist, path: '{folder}', batch_size: 50,"
                   " validation_size: 100}\nmodel: {arch: mlp, hidden: [16]}\n"
                   "train: {epochs: 300, steps_per_call: 1, jit_compile: false}\n"
                   "sweep: {grid: {data.limit: [200, 300, 400]}}\n")  # three datasets
    runs_dir = tmp_path / "runs"
    # both workers hold their run's dataset (the first two, taken in order, both still
    # training); the third run will have to read its own once one of them is done
    proc, _ = train_until_an_epoch(cfg, runs_dir, "--jobs", "2", within=180, runs_with_rows=2)
    shutil.rmtree(folder)
    training = sorted(summary_of(str(f))["cell"]["data.limit"] for f in runs_dir.iterdir()
                      if summary_of(str(f))["status"] == "running")
    assert training == [200, 300], f"the runs were too short for this machine: {training}"
    assert proc.wait(timeout=300) == 1, (tmp_path / "err").read_text()[-2000:]
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err
    assert any("DataError" in line and str(folder) in line for line in err.splitlines()), err
    done = (tmp_path / "out").read_text().splitlines()
    assert len(done) == 2 and all(summary_of(f)["status"] == "completed" for f in done)
    write_idx_folder(folder, tiny_mnist(n_train=700, n_test=50))
    again = bnexp("train", cfg, "--runs-dir", runs_dir, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    folders = again.stdout.splitlines()
    assert len(folders) == 3 and set(done) < set(folders)
    assert all(summary_of(f)["status"] == "completed" for f in folders)


def test_several_configs_are_all_checked_before_the_first_trains(tmp_path):
    """`bnexp train a.yaml b.yaml`: a dataset missing for the second file is found before
    the first file's run starts: exit 2, one line naming the second file, nothing written.
    With both good (and --jobs 1), both train in this one process, in order."""
    good = tmp_path / "a.yaml"
    good.write_text("name: a\n" + TINY + TRAIN + "epochs: 1}\n")
    bad = tmp_path / "b.yaml"
    bad.write_text(f"name: b\ndata: {{dataset: mnist, path: '{tmp_path / 'nowhere'}'}}\n")
    out = bnexp("train", good, bad, "--runs-dir", tmp_path / "runs")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}") and "nowhere" in line
    assert not (tmp_path / "runs").exists() and out.stdout == ""
    other = tmp_path / "c.yaml"
    other.write_text("name: c\n" + TINY + TRAIN + "epochs: 1}\nsweep: {seeds: [0, 1]}\n")
    out = bnexp("train", good, other, "--runs-dir", tmp_path / "runs", "--jobs", "1")
    assert out.returncode == 0, out.stderr
    names = [summary_of(f)["run_id"].split("_")[0] for f in out.stdout.splitlines()]
    assert names == ["a", "c", "c"]
    assert len({summary_of(f)["pid"] for f in out.stdout.splitlines()}) == 1
