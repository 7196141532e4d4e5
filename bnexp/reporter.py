"""The Reporter: what training and the sweep backends tell the person watching.

Training and the backends call these methods and never draw anything themselves; the
views (bnexp.views.progress) implement them for a terminal or a log, the pool's
workers forward them to the parent process, and NullReporter says nothing. The
trap: a note (XLA fallback, a config warning) must not be lost where nobody is
watching: the run's lifecycle also writes every note to train.log and summary.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class RunReporter(Protocol):
    """What one run tells while it trains (the run's lifecycle and its epoch loop)."""

    def note(self, text: str) -> None:
        """A notice about the current run the user should read (also in train.log)."""

    def run_started(self, path: Path, epochs: int) -> None: ...

    def epoch_started(self, epoch: int, n_steps: int) -> None: ...

    def step(self, epoch: int, step: int, loss: float) -> None:
        """After each compiled call: steps done in the epoch, the last step's loss."""

    def epoch_done(self, row: dict) -> None: ...

    def run_done(self, path: Path, summary: dict) -> None: ...


class Reporter(RunReporter, Protocol):
    """What a sweep tells: its runs' progress, and the sweep's own."""

    def run_skipped(self, path: Path | None, status: str, label: str = "") -> None:
        """A run left as it is: already finished, or still running elsewhere (path None:
        another process has claimed it and made no folder yet; label names it)."""

    def sweep_started(self, total: int, workers: int) -> None:
        """Runs in other processes (pool, Ray) from here on: only their ends are seen."""

    def sweep_tick(self) -> None:
        """Called about twice a second while a sweep waits: refresh elapsed time and ETA."""

    def sweep_run_started(self, path: Path | None) -> None: ...

    def sweep_run_done(self, path: Path, summary: dict) -> None: ...

    def sweep_run_error(self, label: str, message: str) -> None:
        """A run that failed before it had a run folder (its worker died)."""

    def sweep_finished(self) -> None: ...


class NullReporter:
    """A Reporter that says nothing (tests, library use, workers' per-step progress)."""

    def note(self, text: str) -> None:
        pass

    def run_skipped(self, path: Path | None, status: str, label: str = "") -> None:
        pass

    def run_started(self, path: Path, epochs: int) -> None:
        pass

    def epoch_started(self, epoch: int, n_steps: int) -> None:
        pass

    def step(self, epoch: int, step: int, loss: float) -> None:
        pass

    def epoch_done(self, row: dict) -> None:
        pass

    def run_done(self, path: Path, summary: dict) -> None:
        pass

    def sweep_started(self, total: int, workers: int) -> None:
        pass

    def sweep_tick(self) -> None:
        pass

    def sweep_run_started(self, path: Path | None) -> None:
        pass

    def sweep_run_done(self, path: Path, summary: dict) -> None:
        pass

    def sweep_run_error(self, label: str, message: str) -> None:
        pass

    def sweep_finished(self) -> None:
        pass
