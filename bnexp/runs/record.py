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
]
METRIC_COLUMNS = EPOCH_COLUMNS  # the name older code and the README use
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

    def rank(self) -> tuple:
        """The latest-attempt rule: a finished attempt beats any other, then the latest."""
        return (self.status in FINISHED, self.started)


def effective_status(summary: dict) -> str:
    """The recorded status, except that a "running" run whose process is gone is "interrupted".

    A SIGKILLed run cannot write its own end: its summary still says running. The pid
    and host it recorded tell: on this host, a pid that no longer exists means it died.
    """
    status = summary.get("status", "unknown")
    here = summary.get("host") == socket.gethostname()
    if status == "running" and here and not _process_alive(summary.get("pid")):
        return "interrupted"
    return status


def best_of(rows: list[dict]) -> dict:
    """Per metric, its best value over epochs (max accuracy, min loss) and the epoch it came."""
    best = {}
    for key in QUALITY_COLUMNS:
        values = [(r[key], r["epoch"]) for r in rows if finite(r.get(key))]
        if values:
            pick = min if key in LOWER_IS_BETTER else max
            value, epoch = pick(values, key=lambda v: v[0])
            best[key] = value
            best[f"{key}_epoch"] = epoch
    return best


def final_of(row: dict) -> dict:
    """An epoch row's metrics as summary.json's `final` holds them."""
    return {k: row.get(k) for k in EPOCH_COLUMNS if k != "epoch"}


def finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _process_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
