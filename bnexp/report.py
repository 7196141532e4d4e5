"""Everything drawn: progress while training, the model summary, validate's run list.

Progress goes to stderr so stdout carries only results (run folder paths) for
scripts. On a terminal it is a rich progress bar (epochs, batches, running
loss); without one (CI, pipes) one plain line per epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


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
    """A rich progress bar on a terminal, plain lines otherwise."""
    console = console or Console(stderr=True)
    return RichReporter(console) if console.is_terminal else PlainReporter(console)


class PlainReporter:
    """One line per epoch and one per finished run, for logs and CI."""

    def __init__(self, console: Console):
        self.console = console
        self.name = ""

    def run_started(self, path: Path, epochs: int) -> None:
        self.name = path.name
        plural = "s" * (epochs != 1)
        self.console.print(f"{self.name}: training {epochs} epoch{plural}", highlight=False)

    def epoch_started(self, epoch: int, n_steps: int) -> None:
        pass

    def step(self, epoch: int, step: int, loss: float) -> None:
        pass

    def epoch_done(self, row: dict) -> None:
        self.console.print(f"{self.name}: {epoch_line(row)}", highlight=False, soft_wrap=True)

    def run_done(self, path: Path, summary: dict) -> None:
        status = summary["status"]
        extra = f" ({summary['error']})" if summary.get("error") else ""
        self.console.print(f"{path.name}: {status}{extra}", highlight=False, soft_wrap=True)
        print(path, flush=True)


class RichReporter(PlainReporter):
    """A live bar for epochs and one for the batches of the current epoch."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=console,
        )

    def run_started(self, path: Path, epochs: int) -> None:
        self.name = path.name
        self.progress.start()
        self.epochs = self.progress.add_task(path.name, total=epochs, loss="")
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


def print_model_summary(name: str, rows: list[dict], counts: dict, console=None) -> None:
    """Layers, output shapes and parameter counts, with Keras' totals."""
    console = console or Console()
    table = Table(title=name)
    for column in ("layer", "type", "output shape", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in rows:
        table.add_row(row["name"], row["type"], row["output_shape"], f"{row['params']:,}")
    console.print(table)
    total = counts["trainable"] + counts["non_trainable"]
    console.print(f"Total params: {total:,}")
    console.print(f"Trainable params: {counts['trainable']:,}")
    console.print(f"Non-trainable params: {counts['non_trainable']:,}")


def print_run_list(source: str, specs, console=None) -> None:
    """validate's answer: the config is valid and expands to these runs."""
    console = console or Console(soft_wrap=True, highlight=False)  # scripts read these lines
    console.print(f"{source}: valid, {len(specs)} run{'s' * (len(specs) != 1)}")
    for spec in specs:
        cell = ", ".join(f"{k}={v}" for k, v in spec.cell.items())
        console.print(f"  {spec.label}" + (f"  ({cell})" if cell else ""))


def print_error(message: str) -> None:
    """Bad input: one line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)
