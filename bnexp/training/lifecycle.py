"""A run's life: a new run folder or a resumed one, trained to its end, its summary kept
up to date, its provenance recorded. Never raises for a failing run: it is recorded.

summary.json is written first (a reader never sees a run folder without one), then
after every epoch and at the end; the status is completed, diverged, failed or
interrupted. Notices for the user (the XLA fallback, config warnings) go to the
reporter and also to train.log and summary.json's `notes`, whatever the backend.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp import runs
from bnexp.config import Config, RunSpec, advice
from bnexp.errors import BadInput
from bnexp.reporter import RunReporter
from bnexp.runs import Outcome, checkpoint, provenance
from bnexp.runs.plan import resumable
from bnexp.training.compiled import StepCache
from bnexp.training.freezing import param_counts
from bnexp.training.loop import Diverged, fit, new_model
from bnexp.version import __version__


@dataclass
class Begun:
    """A run whose summary.json says "running" in this process: its claim is made
    (bnexp.runs.claims); `train` takes it to its end."""

    config: Config
    splits: data_mod.Splits
    folder: runs.RunFolder
    summary: dict
    model: Any
    strategy: Any
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_one(spec: RunSpec, splits: data_mod.Splits, runs_dir: Path, reporter: RunReporter,
            cache: StepCache | None = None) -> Outcome:
    """One run in a new folder under runs_dir, with the cache's compiled steps where it
    has them. Never raises for a failing run: it is recorded."""
    return train(begin_new(spec, splits, runs_dir), reporter, cache)


def resume_run(path: Path, splits: data_mod.Splits | None, reporter: RunReporter,
               cache: StepCache | None = None) -> Outcome:
    """Continue an interrupted or failed run in its own folder from its last checkpoint."""
    return train(begin_resume(path, splits), reporter, cache)


def begin_new(spec: RunSpec, splits: data_mod.Splits, runs_dir: Path) -> Begun:
    """A new run folder under runs_dir with its summary ("running"), config and empty
    metrics.csv; a full disk leaves no half-made folder behind (BadInput)."""
    config = spec.config
    model, strategy = new_model(config, splits.input_shape)
    path = runs.create(runs_dir, spec.label)
    folder = runs.RunFolder(path)
    summary = _initial_summary(spec, splits, model, path)
    try:
        folder.write_summary(summary)  # first: a reader never sees a run folder without one
        folder.write_config(config_mod.to_yaml(config))
        folder.start_metrics()
    except OSError as e:
        shutil.rmtree(path, ignore_errors=True)
        raise BadInput(f"{runs_dir}: --runs-dir: cannot write run folders here "
                       f"({e.strerror})") from None
    folder.log(f"started {path.name}: {splits.source}, {summary['data']}")
    return Begun(config, splits, folder, summary, model, strategy,
                 notes=advice.notes_for(config))


def begin_resume(path: Path, splits: data_mod.Splits | None) -> Begun:
    """An interrupted or failed run's folder made ready to continue from its last
    checkpoint, its summary saying "running" in this process again. The caller holds the
    folder's lock (bnexp.runs.claims): the check that nobody runs it and the write
    that claims it are one step.

    metrics.csv is first made to agree with the checkpoint: a torn last line, or a row
    written after the checkpoint's epoch, goes; rows the checkpoint has and the file
    lacks are appended. So the file ends with no gap and no duplicate.
    """
    folder = runs.RunFolder(path)
    summary, config = resumable(path)
    if splits is None:
        splits = data_mod.load(config.data, str(path / "config.yaml"))
    model, strategy = new_model(config, splits.input_shape)
    ckpt = path / checkpoint.FILENAME
    rows = checkpoint.rows(ckpt) if ckpt.exists() else []
    runs.repair_metrics(path, rows)
    summary.update(status="running", error=None, pid=os.getpid(),
                   pid_started=runs.process_started(os.getpid()), host=socket.gethostname(),
                   epochs_done=len(rows), schema=runs.SCHEMA, best=runs.best_of(rows))
    summary.setdefault("resumed", []).append({"at": _now(), "from_epoch": len(rows)})
    try:
        folder.write_summary(summary)
    except OSError as e:
        raise BadInput(f"{path}: --resume: cannot write the run folder ({e.strerror})") from None
    folder.log(f"resumed after epoch {len(rows)}")
    return Begun(config, splits, folder, summary, model, strategy, rows)


def train(begun: Begun, reporter: RunReporter, cache: StepCache | None = None) -> Outcome:
    """Train a begun run to its end. Never raises for a failing run: it is recorded."""
    return _execute(begun.config, begun.splits, begun.folder, begun.summary, begun.model,
                    begun.rows, reporter, begun.strategy, cache, begun.notes)


def _execute(config, splits, folder: runs.RunFolder, summary: dict, model, rows: list[dict],
             reporter: RunReporter, strategy=None, cache: StepCache | None = None,
             notes: list[str] = ()) -> Outcome:
    """Train to the end, keeping metrics.csv, checkpoint and summary.json up to date;
    `notes` (warnings about the config) are noted once the run has started."""
    t0 = time.time() - (summary.get("wall_seconds") or 0.0)
    reporter = _Noting(reporter, folder, summary)
    reporter.run_started(folder.path, config.train.epochs)

    def on_epoch(row):
        rows.append(row)
        folder.append_metrics(row)
        summary.update(epochs_done=row["epoch"], final=runs.final_of(row), best=runs.best_of(rows),
                       bn_gap=runs.bn_gap(row))
        folder.write_summary(summary)
        reporter.epoch_done(row)

    try:
        for note in notes:
            reporter.note(note)
        fit(config, splits, on_epoch, reporter, model=model, folder=folder.path,
            strategy=strategy, cache=cache)
        summary["status"] = "completed"
    except Diverged as e:
        summary.update(status="diverged", diverged_at={"epoch": e.epoch, "step": e.step})
        folder.log(str(e))
    except Exception as e:  # noqa: BLE001 - a failing run is recorded, the sweep goes on
        summary.update(status="failed", error=f"{type(e).__name__}: {e}")
        folder.log("failed:\n" + traceback.format_exc())
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        _finish(summary, folder, t0)
        raise
    _finish(summary, folder, t0)
    reporter.run_done(folder.path, summary)
    return Outcome(folder.path, summary["status"])


class _Noting:
    """The run's RunReporter, whose notes also land in train.log and summary.json; the
    rest goes to the reporter it wraps as it is."""

    def __init__(self, reporter: RunReporter, folder: runs.RunFolder, summary: dict):
        self._reporter, self._folder, self._summary = reporter, folder, summary

    def note(self, text: str) -> None:
        self._folder.log(f"note: {text}")
        self._summary.setdefault("notes", []).append(text)
        self._folder.write_summary(self._summary)
        self._reporter.note(text)

    def run_started(self, path: Path, epochs: int) -> None:
        self._reporter.run_started(path, epochs)

    def epoch_started(self, epoch: int, n_steps: int) -> None:
        self._reporter.epoch_started(epoch, n_steps)

    def step(self, epoch: int, step: int, loss: float) -> None:
        self._reporter.step(epoch, step, loss)

    def epoch_done(self, row: dict) -> None:
        self._reporter.epoch_done(row)

    def run_done(self, path: Path, summary: dict) -> None:
        self._reporter.run_done(path, summary)


def _initial_summary(spec: RunSpec, splits, model, path: Path) -> dict:
    return {
        "run_id": path.name,
        "schema": runs.SCHEMA,  # 2: best is an epoch chosen on validation (selected_by)
        "status": "running",
        "epochs_done": 0,
        "epochs": spec.config.train.epochs,
        "seed": spec.config.seed,
        "config_hash": config_mod.config_hash(spec.config),
        "cell": spec.cell,
        "config": spec.config.model_dump(exclude={"sweep"}),
        "params": param_counts(spec.config, model),
        "data": {"source": splits.source, "train": len(splits.x_train),
                 "validation": len(splits.x_val), "test": len(splits.x_test)},
        "final": {},
        "best": {},
        "started": _now(),
        "ended": None,
        "wall_seconds": None,
        "pid": os.getpid(),
        "pid_started": runs.process_started(os.getpid()),
        "host": socket.gethostname(),
        "versions": {"bnexp": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "git_commit": _git_commit(),
        "invocation": provenance.invocation(spec.source, spec.overrides, path.parent),
        "machine": provenance.machine(_gpu_names()),
        "error": None,
    }


def _gpu_names() -> list[str]:
    """The GPUs TensorFlow sees, by their model names where it tells them."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name",
                                                                             gpu.name))
        except (RuntimeError, ValueError):
            names.append(gpu.name)
    return names


def _finish(summary: dict, folder: runs.RunFolder, t0: float) -> None:
    summary["ended"] = _now()
    summary["wall_seconds"] = round(time.time() - t0, 3)
    summary["peak_rss_mb"] = peak_rss_mb()
    try:
        folder.write_summary(summary)
    except OSError as e:
        # summary.json keeps its last whole version ("running", this pid): once this
        # process is gone, readers take the run as interrupted and --resume continues it
        summary["status"] = "failed"
        summary["error"] = (f"{summary.get('error') or ''}; " if summary.get("error") else ""
                            ) + f"summary.json not updated: {e.strerror}"
    folder.log(f"{summary['status']} after {summary['epochs_done']} epochs")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _git_commit() -> str | None:
    """The commit of the bnexp source tree, where it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
