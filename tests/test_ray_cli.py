"""`bnexp train --backend ray` through the installed script: bnexp starts its own local
Ray, trains every run as a Ray task, writes the run folders and stops its Ray again."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray at a time
pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[dev]')")

CONFIG = ("name: rc\ndata: {dataset: synthetic, batch_size: 50, validation_size: 100, "
          "limit: 300}\nmodel: {arch: mlp, hidden: [16]}\ntrain: {epochs: 2}\n"
          "sweep: {seeds: [0, 1]}\n")


def raylets() -> set[str]:
    """PIDs of the Ray node processes on this machine (read from /proc: no pgrep needed).

    A set, not a count: another test's Ray may still be exiting when this test starts
    (`ray.shutdown()` does not wait for its raylet), and must not count against bnexp."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"raylet" in cmdline.read_bytes():
                pids.add(cmdline.parent.name)
        except OSError:  # the process ended while we looked
            continue
    return pids


def raylets_left(before: set[str], wait: float = 60.0) -> set[str]:
    """The raylets not in `before` that are still alive after up to `wait` seconds (a
    raylet stops asynchronously: on 2 cores under a load of 7 it took over 20 s; a leaked
    one lives on forever)."""
    deadline = time.monotonic() + wait
    while (left := raylets() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_bnexp_starts_trains_on_and_stops_its_own_ray(tmp_path):
    cfg = tmp_path / "rc.yaml"
    cfg.write_text(CONFIG)
    before = raylets()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["BNEXP_NO_DOWNLOAD"] = "1"
    out = subprocess.run([str(Path(sys.executable).with_name("bnexp")), "train", str(cfg),
                          "--backend", "ray", "--cpus", "1", "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                         timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    folders = out.stdout.splitlines()
    assert len(folders) == 2 and all(Path(f).parent == tmp_path / "runs" for f in folders)
    for folder in folders:
        summary = json.loads((Path(folder) / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert raylets_left(before) == set()  # its own Ray stopped with it


def test_a_run_no_node_can_take_is_refused_before_any_task_and_ray_stops(tmp_path):
    """`--cpus 64` on a 2-core machine: Ray would wait for ever for such a node (it hung,
    and its processes stayed behind); one line, exit 2, no run folder, no raylet left."""
    cfg = tmp_path / "rc.yaml"
    cfg.write_text(CONFIG)
    before = raylets()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["BNEXP_NO_DOWNLOAD"] = "1"
    cpus = (os.cpu_count() or 2) * 32
    out = subprocess.run([str(Path(sys.executable).with_name("bnexp")), "train", str(cfg),
                          "--backend", "ray", "--cpus", str(cpus), "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert f"--cpus {cpus}: no node of this Ray cluster has {cpus} CPUs" in line
    assert not list((tmp_path / "runs").glob("*/summary.json"))
    assert raylets_left(before) == set()
