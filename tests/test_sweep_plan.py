"""Sweep planning without TensorFlow: which runs a sweep skips, resumes or starts afresh,
read from the run folders already under --runs-dir (the latest attempt of each config)."""

import json
from pathlib import Path

import pytest

from bnexp import config
from bnexp.errors import BadInput
from bnexp.runs.plan import plan, resumable
from tests.helpers import fake_run_rows

DATA = {"dataset": "synthetic", "batch_size": 50, "validation_size": 200}
ROW = [{"train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.5}]


class Skips:
    """A reporter that remembers what it was told was skipped."""

    def __init__(self):
        self.skipped = []

    def run_skipped(self, path, status):
        self.skipped.append((Path(path).name, status))


def specs(seeds):
    return config.expand({"name": "exp", "data": DATA, "sweep": {"seeds": seeds}}, "test")


def dead_pid_summary(path: Path) -> None:
    """A 'running' summary whose process is gone: read as interrupted."""
    summary = json.loads((path / "summary.json").read_text())
    summary.update(status="running", pid=2**22 + 12345, pid_started=1)
    (path / "summary.json").write_text(json.dumps(summary))


def test_finished_and_live_runs_are_kept_interrupted_resume_failed_and_new_start(tmp_path):
    folders = {}
    for seed, status in ((0, "completed"), (1, "diverged"), (2, "running"), (3, "running"),
                         (4, "failed"), (5, "interrupted")):
        folders[seed] = fake_run_rows(tmp_path, ROW, status=status, seed=seed)
    dead_pid_summary(folders[3])  # seed 2 stays running: its pid is this live process
    reporter = Skips()
    outcomes, todo = plan(specs([0, 1, 2, 3, 4, 5, 6]), tmp_path, False, reporter)
    assert [(o.path, o.status, o.skipped) for o in outcomes] == [
        (folders[0], "completed", True), (folders[1], "diverged", True),
        (folders[2], "running", True)]
    assert reporter.skipped == [(folders[s].name, st) for s, st in
                                ((0, "completed"), (1, "diverged"), (2, "running"))]
    assert [(spec.config.seed, resume) for spec, resume in todo] == [
        (3, folders[3]), (4, None), (5, folders[5]), (6, None)]


def test_force_plans_every_run_afresh(tmp_path):
    fake_run_rows(tmp_path, ROW, status="completed", seed=0)
    fake_run_rows(tmp_path, ROW, status="interrupted", seed=1)
    reporter = Skips()
    outcomes, todo = plan(specs([0, 1]), tmp_path, True, reporter)
    assert outcomes == [] and reporter.skipped == []
    assert [(spec.config.seed, resume) for spec, resume in todo] == [(0, None), (1, None)]


def test_a_finished_attempt_beats_a_later_interrupted_one(tmp_path):
    done = fake_run_rows(tmp_path, ROW, status="completed", seed=0)
    fake_run_rows(tmp_path, ROW, status="interrupted", seed=0,
                  summary={"started": "2026-06-01T00:00:00"})
    outcomes, todo = plan(specs([0]), tmp_path, False, Skips())
    assert [(o.path, o.status) for o in outcomes] == [(done, "completed")] and todo == []


def test_a_missing_runs_folder_plans_everything(tmp_path):
    outcomes, todo = plan(specs([0, 1]), tmp_path / "none", False, Skips())
    assert outcomes == [] and [resume for _, resume in todo] == [None, None]


# ---------------------------------------------------------------- --resume's checks


def test_resumable_returns_the_summary_and_the_config_it_ran(tmp_path):
    folder = fake_run_rows(tmp_path, ROW, status="interrupted", seed=3)
    summary, cfg = resumable(folder)
    assert summary["status"] == "interrupted" and summary["seed"] == 3
    assert cfg.seed == 3 and config.config_hash(cfg) == summary["config_hash"]


def test_resumable_refuses_with_one_line_naming_the_folder(tmp_path):
    with pytest.raises(BadInput) as error:
        resumable(tmp_path)
    assert str(error.value) == f"{tmp_path}: --resume: not a run folder (no summary.json)"
    live = fake_run_rows(tmp_path / "live", ROW, status="running", seed=0)
    with pytest.raises(BadInput) as error:
        resumable(live)
    summary = json.loads((live / "summary.json").read_text())
    assert str(error.value) == (f"{live}: --resume: still running (pid {summary['pid']} on "
                                f"{summary['host']})")
    broken = fake_run_rows(tmp_path / "broken", ROW, status="interrupted", seed=0)
    (broken / "summary.json").write_text("{not json")
    with pytest.raises(BadInput) as error:
        resumable(broken)
    assert str(error.value).startswith(f"{broken}/summary.json: --resume: ")


def test_resumable_refuses_a_config_changed_since_the_run_started(tmp_path):
    folder = fake_run_rows(tmp_path, ROW, status="failed", seed=0)
    text = (folder / "config.yaml").read_text().replace("batch_size: 50", "batch_size: 40")
    (folder / "config.yaml").write_text(text)
    with pytest.raises(BadInput) as error:
        resumable(folder)
    assert str(error.value) == (f"{folder}/config.yaml: --resume: the config changed since the "
                                "run started; start a new run instead")
