"""A --jobs sweep's processes die with it, and a run whose worker was killed says so
(issue 34, class 3): real processes, real signals."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnexp import runs

pytestmark = pytest.mark.slow

LONG = """
name: long
data: {dataset: synthetic, batch_size: 100, validation_size: 200, limit: 200, test_limit: 100}
model: {arch: mlp, hidden: [16]}
train: {epochs: 100000, jit_compile: false}
sweep: {seeds: [0, 1]}
"""


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)
    return value


def training(runs_dir: Path) -> list[Path]:
    """The run folders whose summary says running, after an epoch, or []."""
    found = []
    for folder in sorted(runs_dir.glob("long_*")):
        try:
            summary = runs.read_summary(folder)
        except (OSError, ValueError):
            return []
        if summary.get("status") == "running" and summary.get("epochs_done", 0) >= 1:
            found.append(folder)
    return found if len(found) == 2 else []


def test_a_killed_worker_is_recorded_and_workers_die_with_a_killed_sweep(tmp_path):
    """SIGKILL one worker: its run says "interrupted" with the signal, the sweep goes on.
    SIGKILL the sweep itself: its other worker ends its run as "interrupted" and exits,
    and no process of bnexp's is left (before: the workers trained on, then waited for
    tasks for ever; the killed worker's run was "failed before it started")."""
    config = tmp_path / "long.yaml"
    config.write_text(LONG)
    exe = str(Path(sys.executable).with_name("bnexp"))
    parent = subprocess.Popen([exe, "train", str(config), "--runs-dir", str(tmp_path / "runs"),
                               "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "BNEXP_NO_DOWNLOAD": "1"})
    try:
        first, second = wait_for(lambda: training(tmp_path / "runs"), 180, "two runs training")
        victim = runs.read_summary(first)["pid"]
        os.kill(victim, signal.SIGKILL)
        recorded = wait_for(lambda: runs.read_summary(first).get("status") == "interrupted",
                            30, "the killed worker's run recorded")
        assert recorded
        summary = runs.read_summary(first)
        assert summary["error"] == "its worker process died (killed by SIGKILL)"
        assert "interrupted: its worker process died (killed by SIGKILL)" in \
            (first / "train.log").read_text()
        left = descendants(parent.pid)
        assert left, "the sweep has no processes left to check"
        parent.kill()
        output = parent.communicate(timeout=30)[0]
        wait_for(lambda: not any(alive(pid) for pid in left), 60,
                 f"the sweep's processes {sorted(left)} to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert f"{first.name}: interrupted (its worker process died (killed by SIGKILL))" in output
    assert runs.read_summary(second)["status"] == "interrupted"
    assert runs.read_record(second).status == "interrupted"
