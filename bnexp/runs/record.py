"""What a run is, read back: its epoch row's columns, its statuses, its record.

One place lists the epoch row's fields (EPOCH_COLUMNS): the training loop builds rows
with exactly these keys, metrics.csv has exactly these columns (a key not listed is an
error, not silently dropped) and compare reads them. No TensorFlow here.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

EPOCH_COLUMNS = [
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
    "seconds", "samples_per_sec", "eval_seconds", "test_loss_batchstats", "test_acc_batchstats",
    "lr",  # last: a run folder of an older bnexp, resumed, keeps its columns in place
]
QUALITY_COLUMNS = ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                   "test_loss_batchstats", "test_acc_batchstats"]
LOWER_IS_BETTER = {"train_loss", "val_loss", "test_loss", "test_loss_batchstats"}
FINISHED = ("completed", "diverged")  # results: a sweep re-run keeps them


@dataclass
class Outcome:
    """How one run ended: its folder and status (completed, diverged, failed, interrupted)."""

    path: Path | None  # None: the run died before it had a folder
    status: str
    skipped: bool = False  # finished in an earlier invocation; not run again


@dataclass
class RunRecord:
    """One run folder as read back: its summary.json and the status that counts.

    `status` is effective_status: a "running" run whose process is gone reads
    "interrupted". `config` is the resolved config (from summary.json, else config.yaml);
    None where the reader was not asked for it."""

    path: Path
    summary: dict
    status: str
    config: dict | None = field(default=None, repr=False)

    @property
    def config_hash(self) -> str | None:
        return self.summary.get("config_hash")

    @property
    def started(self) -> str:
        return str(self.summary.get("started") or "")

    @property
    def label(self) -> str | None:
        """The label of the sweep.cells arm the run came from (summary.json's cell.label),
        or None: a run without arms, or a label that is not text (a hand-edited file)."""
        cell = self.summary.get("cell")
        label = cell.get("label") if isinstance(cell, dict) else None
        return label if isinstance(label, str) else None

    def rank(self) -> tuple:
        """The latest-attempt rule: a finished attempt beats any other, then the latest."""
        return (self.status in FINISHED, self.started)


def effective_status(summary: dict) -> str:
    """The recorded status, except that a "running" run whose process is gone is "interrupted".

    A SIGKILLed run cannot write its own end: its summary still says running. The pid,
    host and process start time it recorded tell: on this host, a pid that no longer
    exists, or that now belongs to a process started at another time (the pid was
    reused), means it died.
    """
    status = summary.get("status", "unknown")
    status = status if isinstance(status, str) else "unknown"
    here = summary.get("host") == socket.gethostname()
    if status == "running" and here and not _process_alive(summary.get("pid"),
                                                          summary.get("pid_started")):
        return "interrupted"
    return status


def process_started(pid: int) -> int | None:
    """When process pid started, in clock ticks since boot (/proc/PID/stat field 22), or
    None where that cannot be read (not Linux, no such process): with the pid, it names
    one process even after the pid is reused."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError, OverflowError):
        return None


SCHEMA = 2  # summary.json's "schema": 2, its best an epoch chosen on validation (none: 1)
SELECTORS = ("val_loss", "val_acc")  # what chooses an epoch: never a test metric
BEST_SELECTED_BY = "val_acc"  # summary.json's best: compare's choice for its default metric


def selector_for(metric: str) -> str:
    """The validation metric that chooses the epoch of `metric` at its best: val_acc for
    an accuracy, val_loss for anything else (a loss, seconds, the learning rate)."""
    return "val_acc" if "_acc" in metric else "val_loss"


def selected_row(rows: list[dict], select: str) -> dict | None:
    """The epoch row with the best finite `select` value (max accuracy, min loss; the
    first of equals), or None where no row has one (no validation split)."""
    sign = 1 if select in LOWER_IS_BETTER else -1
    values = [(sign * row[select], i) for i, row in enumerate(rows) if finite(row.get(select))]
    return rows[min(values)[1]] if values else None


def best_of(rows: list[dict], select: str = BEST_SELECTED_BY) -> dict:
    """summary.json's best: the epoch chosen on validation (`select`, the best val_acc by
    default) and every metric at that epoch, as `final` holds them, with how it was
    chosen: {"selected_by": "val_acc", "epoch": 7, "train_loss": ..., "test_acc": ...}.
    Without a validation value in any row, {"selected_by": None}: no epoch is chosen on
    the test set (summary.json's schema 1 held each metric's own best over epochs)."""
    row = selected_row(rows, select)
    if row is None:
        return {"selected_by": None}
    return {"selected_by": select, "epoch": row["epoch"], **final_of(row)}


def final_of(row: dict) -> dict:
    """An epoch row's metrics as summary.json's `final` holds them."""
    return {k: row.get(k) for k in EPOCH_COLUMNS if k != "epoch"}


GAP_WARNING = 0.05  # test accuracy points between batch and moving statistics


def bn_gap(row: dict) -> dict | None:
    """The train/inference gap of the last epoch, with a note when it is large."""
    batch_acc = row.get("test_acc_batchstats")
    if batch_acc is None or not math.isfinite(batch_acc):
        return None
    gap = batch_acc - row["test_acc"]
    note = None
    if gap > GAP_WARNING:
        note = (f"test accuracy is {gap:.3f} higher with batch statistics than with the "
                "moving statistics: the moving averages lag (lower model.bn.momentum or "
                "train longer)")
    return {"test_acc_batchstats": batch_acc, "test_acc": row["test_acc"], "gap": gap,
            "note": note}


def finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _process_alive(pid, started=None) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**22:
        return False  # Linux pids stay below 2**22; a bigger one was never a process here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return not isinstance(started, int) or process_started(pid) in (None, started)
    return not isinstance(started, int) or process_started(pid) in (None, started)
