"""End to end on real Fashion-MNIST: the real CLI, real training, assertions on the files."""

import contextlib
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bnexp import config, runs
from tests.helpers import needs_fashion, run_bnexp, tiny_mnist, write_idx_folder

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("configs/**/*.yaml"))
pytestmark = [pytest.mark.e2e, needs_fashion]


def bnexp(*args, cwd=ROOT):
    """The installed console script, as a user runs it."""
    return run_bnexp(*args, cwd=cwd)


def only_run(runs_dir: Path) -> Path:
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return path


def test_cli_trains_a_fashion_mnist_subset_and_writes_the_run_folder(tmp_path):
    out = bnexp("train", "configs/smoke/lenet_bn.yaml", "--set", "train.epochs=2",
                "--runs-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    assert out.stdout.strip().splitlines() == [str(run)]
    assert "epoch 2" in out.stderr and "oneDNN" not in out.stderr  # quiet TF import, fd 2 back
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == runs.EPOCH_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert summary["data"] == {"source": "/usr/share/datasets/fashion-mnist", "train": 2000,
                               "validation": 500, "test": 1000}
    assert summary["final"]["test_acc"] == pytest.approx(float(rows[-1]["test_acc"]), abs=1e-5)
    assert summary["final"]["test_acc"] > 0.5  # 10 classes: chance is 0.1
    assert set(summary["versions"]) >= {"bnexp", "tensorflow", "python"}
    # the summary's parameter counts are Keras' own (bnexp summary prints model.summary totals)
    printed = bnexp("summary", run / "config.yaml").stdout
    p = summary["params"]
    assert f"Trainable params: {p['trainable']:,}" in printed
    assert f"Non-trainable params: {p['non_trainable']:,}" in printed
    # the resolved config reproduces the run
    (spec,) = config.load(run / "config.yaml")
    assert config.config_hash(spec.config) == summary["config_hash"]
    again = bnexp("train", run / "config.yaml", "--runs-dir", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    rerun = runs.read_metrics(only_run(tmp_path / "again"))
    assert rerun[-1]["test_acc"] == pytest.approx(float(rows[-1]["test_acc"]), abs=2e-3)


# the shipped configs in five groups, one `bnexp train A.yaml B.yaml ... --smoke` each
# (one TensorFlow start per group; the groups spread over the test workers); the studies,
# ~100 smoke runs, in two halves
STUDIES = sorted(ROOT.glob("configs/studies/**/*.yaml"))
GROUPS = {"configs": sorted(ROOT.glob("configs/*.yaml")),
          **{f"configs/{d}": sorted(ROOT.glob(f"configs/{d}/**/*.yaml"))
             for d in ("notebooks", "smoke")},
          "configs/studies (first half)": STUDIES[: len(STUDIES) // 2],
          "configs/studies (second half)": STUDIES[len(STUDIES) // 2:]}


def test_the_groups_hold_every_shipped_config():
    assert sorted(p for group in GROUPS.values() for p in group) == CONFIGS
    assert len(CONFIGS) >= 30  # a glob that finds nothing must not pass for "every"


@pytest.mark.parametrize("group", GROUPS)
def test_every_shipped_config_runs_under_smoke(group, tmp_path):
    """The installed script trains every config of the group in one process: one run
    per grid cell, each completed after one epoch of three batches."""
    # MNIST is not packaged: the MNIST configs run on small IDX files written here
    write_idx_folder(tmp_path / "data" / "mnist", tiny_mnist(n_train=400, n_test=100))
    paths = GROUPS[group]
    # without XLA but in configs/ (xla_check.yaml sweeps it): its compile per model and
    # batch shape (~1 s each, tested in test_xla.py) was 60% of this test's time over the
    # studies' ~100 smoke runs on an empty XLA cache
    no_xla = [] if group == "configs" else ["--set", "train.jit_compile=false"]
    out = run_bnexp("train", *paths, "--smoke", "--jobs", "1", "--runs-dir", tmp_path / "runs",
                    *no_xla, cwd=ROOT, env={"BNEXP_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "retracing" not in out.stderr  # each model traced once, on purpose: no warning
    expected: dict[str, int] = {}
    for path in paths:
        raw = yaml.safe_load(path.read_text())
        grid = (raw.get("sweep") or {}).get("grid") or {}
        arms = len((raw.get("sweep") or {}).get("cells") or [None])
        name = raw.get("name") or path.stem
        expected[name] = expected.get(name, 0) + arms * math.prod(len(v) for v in grid.values())
    folders = [Path(line) for line in out.stdout.splitlines()]
    made: dict[str, int] = {}
    for run in folders:
        summary = runs.read_summary(run)
        assert summary["status"] == "completed" and summary["epochs_done"] == 1, run
        assert len(runs.read_metrics(run)) == 1
        name = yaml.safe_load((run / "config.yaml").read_text())["name"]
        made[name] = made.get(name, 0) + 1
    assert made == expected
    assert sorted(folders) == sorted((tmp_path / "runs").iterdir())


def test_scratch_and_keras_bn_train_alike_on_real_data(tmp_path, write_config):
    path = write_config(
        "name: impl\ndata: {limit: 3000, validation_size: 1000, test_limit: 2000}\n"
        "train: {epochs: 2}\nsweep:\n  grid:\n    model.bn.impl: [keras, scratch]\n"
    )
    result = bnexp("train", path, "--jobs", "1", "--runs-dir", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    finals = {}
    for run in (tmp_path / "r").iterdir():
        summary = runs.read_summary(run)
        finals[summary["cell"]["model.bn.impl"]] = summary["final"]
    assert finals["keras"]["train_loss"] == pytest.approx(finals["scratch"]["train_loss"],
                                                          rel=0.02)
    assert abs(finals["keras"]["test_acc"] - finals["scratch"]["test_acc"]) < 0.02


def test_lenet_bn_on_full_fashion_mnist_two_epochs_beats_0_70(tmp_path):
    """The issue's bar: BN momentum 0.9, lr 1.0, batch 256, 2 epochs, inference-mode test."""
    out = bnexp("train", "configs/d2l_lenet_bn.yaml", "--set", "train.epochs=2",
                "--runs-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    summary = runs.read_summary(only_run(tmp_path))
    assert summary["data"]["train"] == 60000 and summary["data"]["test"] == 10000
    assert summary["final"]["test_acc"] > 0.70
    assert summary["params"] == {"trainable": 44652, "frozen": 0, "non_trainable": 452}


def test_sweep_interrupted_then_finished_and_compared_against_independent_stats(tmp_path):
    import signal
    import time

    import numpy as np
    import yaml
    from scipy import stats

    small = ["--set", "data.limit=2000", "--set", "data.test_limit=2000", "--set",
             "train.epochs=2", "--set", "train.jit_compile=false",  # XLA: not the point
             "--jobs", "2", "--runs-dir", tmp_path]
    exe = Path(sys.executable).with_name("bnexp")
    args = [str(exe), "train", "configs/placement_study.yaml", *map(str, small)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)

    def statuses():
        found = []
        for path in tmp_path.glob("*/summary.json"):
            with contextlib.suppress(OSError, ValueError):  # a summary mid-replace
                found.append(json.loads(path.read_text())["status"])
        return found

    deadline = time.monotonic() + 300
    while statuses().count("completed") < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first = statuses()
    assert "running" not in first and first.count("completed") < 9
    assert "interrupted" in first
    done_before = {p: p.read_text() for p in tmp_path.glob("*/summary.json")
                   if json.loads(p.read_text())["status"] == "completed"}

    again = bnexp("train", "configs/placement_study.yaml", *small)
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.split()) == 9
    assert again.stderr.count("skipped, already completed") == len(done_before)
    for path, text in done_before.items():  # finished runs were not redone
        assert path.read_text() == text
    assert statuses().count("completed") == 9

    out = bnexp("compare", tmp_path, "--format", "csv", "--out", tmp_path / "table.csv")
    assert out.returncode == 0, out.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "table.csv").set_index("model.bn.placement")
    finals: dict[str, list[float]] = {}
    for run in tmp_path.glob("*/metrics.csv"):
        summary = json.loads((run.parent / "summary.json").read_text())
        if summary["status"] != "completed":
            continue
        placement = yaml.safe_load((run.parent / "config.yaml").read_text())["model"]["bn"][
            "placement"]
        with open(run) as f:
            finals.setdefault(placement, []).append(float(list(csv.DictReader(f))[-1]["test_acc"]))
    assert sorted(table.index) == sorted(finals) == ["after", "before", "none"]
    for placement, values in finals.items():
        row = table.loc[placement]
        assert (row["n"], row["completed"], row["n_used"]) == (3, 3, 3)
        assert row["mean"] == pytest.approx(np.mean(values), abs=1e-6)
        assert row["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-6)
        low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
        assert row["ci95_low"] == pytest.approx(low, abs=1e-6)
        assert row["ci95_high"] == pytest.approx(high, abs=1e-6)
