"""Real processes side by side: two `bnexp train` in one runs folder (see also test_load.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bnexp import runs
from tests.helpers import SYNTHETIC

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("bnexp"))


def start(config: Path, runs_dir: Path, *args) -> subprocess.Popen:
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
    return subprocess.Popen([EXE, "train", str(config), "--runs-dir", str(runs_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_processes_in_one_runs_folder_never_share_a_run_folder(write_config, tmp_path):
    """Two configs of one name (so one folder name, in the same second): two folders."""
    config = write_config(SYNTHETIC)
    procs = [start(config, tmp_path / "runs", "--set", f"optimizer.learning_rate={lr}")
             for lr in (0.01, 0.02)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    printed = [Path(out.strip()) for out, _ in outs]
    assert printed[0] != printed[1]
    assert sorted(printed) == sorted((tmp_path / "runs").iterdir())
    assert printed[0].name.split("_")[:2] == printed[1].name.split("_")[:2]
    for path in printed:
        summary = runs.read_summary(path)
        assert summary["status"] == "completed" and summary["pid"] in {p.pid for p in procs}
        assert [r["epoch"] for r in runs.read_metrics(path)] == [1, 2]
        assert not runs.torn_metrics(path)
    assert len({runs.read_summary(p)["pid"] for p in printed}) == 2
