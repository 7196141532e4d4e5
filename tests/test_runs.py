"""Run folders: exclusive creation, append-only metrics, atomic summaries."""

import json
import math

import pytest

from bnexp import runs
from bnexp.errors import BadInput


def test_create_never_shares_a_folder(tmp_path):
    paths = {runs.create(tmp_path, "exp_s0") for _ in range(5)}
    assert len(paths) == 5 and all(p.is_dir() and p.name.startswith("exp_s0_") for p in paths)


def test_metrics_are_appended_with_one_header_and_blank_nan(tmp_path):
    folder = runs.RunFolder(tmp_path)
    for epoch in (1, 2):
        folder.append_metrics({"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": math.nan})
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].split(",") == runs.EPOCH_COLUMNS
    assert len(lines) == 3 and lines[2].startswith("2,0.5,,")
    rows = runs.read_metrics(tmp_path)
    assert rows[1]["epoch"] == 2 and math.isnan(rows[1]["val_loss"])


def test_summary_is_whole_json_with_nan_as_null_and_no_temp_files(tmp_path):
    folder = runs.RunFolder(tmp_path)
    folder.write_summary({"status": "running", "final": {"val_acc": math.nan}})
    folder.write_summary({"status": "completed", "final": {"val_acc": 0.5}})
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"
    folder.write_summary({"final": {"val_acc": float("nan")}})
    assert json.loads((tmp_path / "summary.json").read_text())["final"]["val_acc"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_best_of_chooses_the_epoch_on_validation_not_on_the_test_set():
    rows = [{"epoch": 1, "val_loss": 2.0, "val_acc": 0.5, "test_acc": 0.5},
            {"epoch": 2, "val_loss": 1.5, "val_acc": 0.6, "test_acc": 0.7},
            {"epoch": 3, "val_loss": 1.0, "val_acc": 0.65, "test_acc": 0.6}]
    best = runs.best_of(rows)
    assert (best["selected_by"], best["epoch"], best["test_acc"]) == ("val_acc", 3, 0.6)
    best = runs.best_of(rows, "val_loss")
    assert (best["selected_by"], best["epoch"], best["val_loss"]) == ("val_loss", 3, 1.0)


def test_unwritable_runs_dir_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BadInput, match="--runs-dir"):
        runs.ensure_writable(blocker / "runs")


def write_rows(folder, n):
    rows = [{"epoch": e, "train_loss": 1.0 / e, "test_acc": 0.1 * e} for e in range(1, n + 1)]
    for row in rows:
        folder.append_metrics(row)
    return rows


def test_a_torn_last_line_is_ignored_and_detected(tmp_path):
    folder = runs.RunFolder(tmp_path)
    write_rows(folder, 2)
    assert not runs.torn_metrics(tmp_path)
    with open(folder.metrics_path, "a") as f:
        f.write("3,0.33")  # a kill in the middle of a write
    assert runs.torn_metrics(tmp_path)
    assert [r["epoch"] for r in runs.read_metrics(tmp_path)] == [1, 2]


def test_repair_makes_metrics_agree_with_the_checkpoint(tmp_path):
    folder = runs.RunFolder(tmp_path)
    rows = write_rows(folder, 3)
    original = folder.metrics_path.read_bytes()
    with open(folder.metrics_path, "a") as f:
        f.write("4,0.2")  # torn line past the checkpoint
    runs.repair_metrics(tmp_path, rows)
    assert folder.metrics_path.read_bytes() == original  # finished rows untouched
    runs.repair_metrics(tmp_path, rows[:2])  # a row written after the checkpoint goes
    assert [r["epoch"] for r in runs.read_metrics(tmp_path)] == [1, 2]
    folder.metrics_path.write_text("")  # killed before even the header
    runs.repair_metrics(tmp_path, rows)
    assert folder.metrics_path.read_bytes() == original


def test_latest_attempts_prefers_finished_then_latest(tmp_path):
    import os
    import socket

    def attempt(name, status, started, pid=None):
        path = tmp_path / name
        path.mkdir()
        runs.RunFolder(path).write_summary({
            "status": status, "config_hash": "h", "started": started,
            "pid": pid or os.getpid(), "host": socket.gethostname()})
        return path

    attempt("a", "failed", "2026-01-01T00:00:01")
    b = attempt("b", "running", "2026-01-01T00:00:02", pid=2**22 + 7)  # process gone
    assert runs.latest_attempts(tmp_path) == {"h": ("interrupted", b)}
    c = attempt("c", "completed", "2026-01-01T00:00:00")
    assert runs.latest_attempts(tmp_path) == {"h": ("completed", c)}
    assert runs.find_finished(tmp_path) == {"h": c}
