"""Progress while training: the Reporter for a terminal (rich bars) and for logs (lines).

Progress goes to stderr so stdout carries only results (run folder paths) for
scripts. On a terminal it is a rich progress bar (epochs, batches, running
loss); without one (CI, pipes) one plain line per epoch.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bnexp.errors import escaped
from bnexp.reporter import NullReporter
from bnexp.views.tables import print_path


def epoch_line(row: dict) -> str:
    """One epoch's metrics in one line."""
    parts = [f"epoch {row['epoch']}"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
        value = row.get(key)
        if value is not None and value == value:  # skip NaN (no validation set)
            parts.append(f"{key} {value:.4f}")
    parts.append(f"{row['seconds']:.1f}s {row['samples_per_sec']:,.0f} samples/s")
    return "  ".join(parts)


def make_reporter(console: Console | None = None):
    """A rich progress bar on a terminal or in Jupyter (rich draws it in a notebook widget,
    which needs ipywidgets: `pip install 'bnexp[notebook]'`), plain lines otherwise."""
    console = console or Console(stderr=True, markup=False, emoji=False, highlight=False)
    live = console.is_terminal or (console.is_jupyter and _has_widgets())
    return RichReporter(console) if live else PlainReporter(console)


def _has_widgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class SweepCounts:
    """Runs done / running / failed of a parallel sweep, and the time left at this pace."""

    def __init__(self, total: int, workers: int):
        self.total, self.workers = total, workers
        self.done = self.running = self.failed = 0
        self.start = time.monotonic()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = "?" if not self.done else _clock(elapsed / self.done * (self.total - self.done))
        return (f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
                f"elapsed {_clock(elapsed)}, ETA {eta}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainReporter(NullReporter):
    """One line per epoch and one per finished run, for logs and CI."""

    def __init__(self, console: Console):
        self.console = console
        self.name = ""
        self.sweep: SweepCounts | None = None

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def note(self, text: str) -> None:
        self.say(f"{self.name}: {text}" if self.name else text)

    def run_skipped(self, path: Path | None, status: str, label: str = "") -> None:
        name = escaped(path.name if path is not None else label)
        if status == "running":
            self.say(f"{name}: skipped, still running in another process")
        else:
            self.say(f"{name}: skipped, already {status} (--force reruns it)")
        if self.sweep is not None:  # skipped by a worker, on a second look
            self.sweep.done += 1
        if path is not None:
            print_path(path)

    def sweep_started(self, total: int, workers: int) -> None:
        self.sweep = SweepCounts(total, workers)
        self.say(f"running {total} runs in {workers} processes")

    def sweep_run_started(self, path: Path) -> None:
        self.sweep.running += 1

    def sweep_run_done(self, path: Path, summary: dict) -> None:
        self.sweep.running -= 1
        self.sweep.done += 1
        self.sweep.failed += summary["status"] == "failed"
        extra = f" ({summary['error']})" if summary.get("error") else ""
        self.say(f"{escaped(path.name)}: {summary['status']}{extra} | {self.sweep.line()}")
        print_path(path)

    def sweep_run_error(self, label: str, message: str) -> None:
        self.sweep.done += 1
        self.sweep.failed += 1
        self.say(f"{label}: failed before it started ({message}) | {self.sweep.line()}")

    def run_started(self, path: Path, epochs: int) -> None:
        self.name = escaped(path.name)
        plural = "s" * (epochs != 1)
        self.console.print(f"{self.name}: training {epochs} epoch{plural}", highlight=False)

    def epoch_done(self, row: dict) -> None:
        self.say(f"{self.name}: {epoch_line(row)}")

    def run_done(self, path: Path, summary: dict) -> None:
        status = summary["status"]
        extra = f" ({summary['error']})" if summary.get("error") else ""
        self.say(f"{escaped(path.name)}: {status}{extra}")
        print_path(path)


class RichReporter(PlainReporter):
    """A live bar for epochs and one for the batches of the current epoch."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=console,
        )

    def run_started(self, path: Path, epochs: int) -> None:
        self.name = escaped(path.name)
        self.progress.start()
        self.epochs = self.progress.add_task(markup_escape(self.name), total=epochs, loss="")
        self.batches = self.progress.add_task("  batches", total=1, loss="")

    def epoch_started(self, epoch: int, n_steps: int) -> None:
        self.progress.reset(self.batches, total=n_steps, description=f"  epoch {epoch}", loss="")

    def step(self, epoch: int, step: int, loss: float) -> None:
        self.progress.update(self.batches, completed=step, loss=f"loss {loss:.4f}")

    def epoch_done(self, row: dict) -> None:
        self.progress.advance(self.epochs)
        self.progress.console.print(epoch_line(row), highlight=False)

    def run_done(self, path: Path, summary: dict) -> None:
        self.progress.stop()
        super().run_done(path, summary)

    def sweep_started(self, total: int, workers: int) -> None:
        super().sweep_started(total, workers)
        self.progress.start()
        self.runs = self.progress.add_task("runs", total=total, loss=self.sweep.line())

    def sweep_tick(self) -> None:
        self.progress.update(self.runs, completed=self.sweep.done, loss=self.sweep.line())

    def sweep_run_started(self, path: Path) -> None:
        super().sweep_run_started(path)
        self.sweep_tick()

    def sweep_run_done(self, path: Path, summary: dict) -> None:
        super().sweep_run_done(path, summary)
        self.sweep_tick()

    def sweep_run_error(self, label: str, message: str) -> None:
        super().sweep_run_error(label, message)
        self.sweep_tick()

    def run_skipped(self, path: Path | None, status: str, label: str = "") -> None:
        super().run_skipped(path, status, label)
        if self.sweep is not None:
            self.sweep_tick()

    def sweep_finished(self) -> None:
        self.sweep_tick()
        self.progress.stop()


