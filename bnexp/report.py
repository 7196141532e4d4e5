"""Everything drawn: progress while training, the model summary, validate's run list.

Progress goes to stderr so stdout carries only results (run folder paths) for
scripts. On a terminal it is a rich progress bar (epochs, batches, running
loss); without one (CI, pipes) one plain line per epoch.
"""

from __future__ import annotations

import sys
import time
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


class PlainReporter:
    """One line per epoch and one per finished run, for logs and CI."""

    def __init__(self, console: Console):
        self.console = console
        self.name = ""
        self.sweep: SweepCounts | None = None

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def note(self, text: str) -> None:
        self.say(f"{self.name}: {text}" if self.name else text)

    def run_skipped(self, path: Path, status: str) -> None:
        if status == "running":
            self.say(f"{path.name}: skipped, still running in another process")
        else:
            self.say(f"{path.name}: skipped, already {status} (--force reruns it)")
        print(path, flush=True)

    def sweep_started(self, total: int, workers: int) -> None:
        self.sweep = SweepCounts(total, workers)
        self.say(f"running {total} runs in {workers} processes")

    def sweep_tick(self) -> None:
        pass

    def sweep_run_started(self, path: Path) -> None:
        self.sweep.running += 1

    def sweep_run_done(self, path: Path, summary: dict) -> None:
        self.sweep.running -= 1
        self.sweep.done += 1
        self.sweep.failed += summary["status"] == "failed"
        extra = f" ({summary['error']})" if summary.get("error") else ""
        self.say(f"{path.name}: {summary['status']}{extra} | {self.sweep.line()}")
        print(path, flush=True)

    def sweep_run_error(self, label: str, message: str) -> None:
        self.sweep.done += 1
        self.sweep.failed += 1
        self.say(f"{label}: failed before it started ({message}) | {self.sweep.line()}")

    def sweep_finished(self) -> None:
        pass

    def run_started(self, path: Path, epochs: int) -> None:
        self.name = path.name
        plural = "s" * (epochs != 1)
        self.console.print(f"{self.name}: training {epochs} epoch{plural}", highlight=False)

    def epoch_started(self, epoch: int, n_steps: int) -> None:
        pass

    def step(self, epoch: int, step: int, loss: float) -> None:
        pass

    def epoch_done(self, row: dict) -> None:
        self.say(f"{self.name}: {epoch_line(row)}")

    def run_done(self, path: Path, summary: dict) -> None:
        status = summary["status"]
        extra = f" ({summary['error']})" if summary.get("error") else ""
        self.say(f"{path.name}: {status}{extra}")
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

    def sweep_finished(self) -> None:
        self.sweep_tick()
        self.progress.stop()


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


# ---------------------------------------------------------------- compare output

FORMATS = ("table", "csv", "markdown", "json")
SUFFIX_FORMATS = {".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".json": "json"}


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def emit_table(frame, fmt: str | None, out: Path | None, title: str = "") -> None:
    """The compare table: a rich table on the terminal, or csv / markdown / json text.

    With --out and no --format, the format follows the file's suffix (csv otherwise).
    """
    from bnexp.errors import BadInput
    from bnexp.runs import write_text_atomic

    if fmt is None:
        fmt = SUFFIX_FORMATS.get(out.suffix.lower(), "csv") if out else "table"
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "table" and out is None:
        Console().print(rich_table(frame, title))
        return
    text = {
        "table": lambda: to_markdown(frame),
        "csv": lambda: frame.to_csv(index=False),
        "markdown": lambda: to_markdown(frame),
        "json": lambda: frame.to_json(orient="records", indent=2) + "\n",
    }[fmt]()
    if out is None:
        sys.stdout.write(text)
        return
    try:
        write_text_atomic(out, text)
    except OSError as e:
        raise BadInput(f"{out}: --out: cannot write ({e.strerror})") from None


def _cell(value, column: str) -> str:
    if isinstance(value, float):
        if value != value:
            return ""
        if column == "p_value":
            return f"{value:.3g}"
        return f"{value:.4f}"
    return str(value)


def to_markdown(frame) -> str:
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(row[c], c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def rich_table(frame, title: str = "") -> Table:
    """The compare table for a terminal: compact columns; diverged in yellow, failed in red."""
    table = Table(title=title or None)
    if frame.empty:
        table.add_column("no runs found")
        return table
    view = terminal_view(frame)
    for column in view.columns:
        numeric = all(_looks_numeric(v) for v in view[column])
        table.add_column(column, justify="right" if numeric else "left")
    for _, row in view.iterrows():
        table.add_row(*[_colour(column, str(row[column])) for column in view.columns])
    return table


def _looks_numeric(text) -> bool:
    return str(text).lstrip("+-").replace(".", "", 1).replace(",", "").isdigit() or text == ""


def terminal_view(frame):
    """Group keys under their last name, counts, then mean +- std, CI, range and baseline."""
    import pandas as pd

    from bnexp.compare import BASELINE_COLUMNS, COUNT_COLUMNS, STAT_COLUMNS

    numeric = set(COUNT_COLUMNS + STAT_COLUMNS + BASELINE_COLUMNS)
    keys = [c for c in frame.columns if c not in numeric and c != "run_id"]
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(short):
        short = {k: k for k in keys}
    view = pd.DataFrame({short[k]: frame[k].astype(str) for k in keys})
    if "mean" not in frame:  # --runs: keys, seed, status, value, folder
        metric = [c for c in frame.columns if c not in keys and c != "run_id"]
        for column in metric:
            view[column] = [_cell(v, column) for v in frame[column]]
        view["run_id"] = frame["run_id"]
        return view
    view["n"] = frame["n"].astype(str)
    for column in ("completed", "diverged", "failed", "interrupted", "running"):
        if column == "completed" or frame[column].any():
            view[column] = frame[column].astype(str)
    metric = frame["metric"].iloc[0]
    view[f"{metric} mean ± std"] = [
        f"{_cell(m, 'mean')} ± {_cell(s, 'std') or '?'}" if m == m else ""
        for m, s in zip(frame["mean"], frame["std"], strict=True)]
    view["95% CI"] = [_interval(lo, hi) for lo, hi in zip(frame["ci95_low"], frame["ci95_high"],
                                                         strict=True)]
    view["min … max"] = [_interval(lo, hi, brackets=False) for lo, hi in
                         zip(frame["min"], frame["max"], strict=True)]
    if "delta" in frame:
        view["Δ vs baseline [95% CI]"] = [
            "baseline" if b == "(baseline)" else
            "" if d != d else f"{d:+.4f} {_interval(lo, hi, signed=True)}"
            for b, d, lo, hi in zip(frame["baseline"], frame["delta"], frame["delta_ci95_low"],
                                    frame["delta_ci95_high"], strict=True)]
        view["p"] = [_cell(p, "p_value") + (f" ({t})" if t else "")
                     for p, t in zip(frame["p_value"], frame["test"], strict=True)]
    return view


def _interval(lo, hi, brackets=True, signed=False) -> str:
    if lo != lo or hi != hi:
        return ""
    form = "{:+.4f}" if signed else "{:.4f}"
    text = f"{form.format(lo)}, {form.format(hi)}" if brackets else f"{lo:.4f} … {hi:.4f}"
    return f"[{text}]" if brackets else text


def _colour(column: str, text: str) -> str:
    if column == "diverged" and text not in ("0", "") or text == "diverged":
        return f"[yellow]{text}[/]"
    if column == "failed" and text not in ("0", "") or text == "failed":
        return f"[red]{text}[/]"
    return text


def plot_curves(curves: dict, metric: str, out: Path) -> None:
    """Learning curves: per group the mean over seeds and a shaded 95% band, one colour each."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    _bands(ax, curves, "epoch", metric)
    ax.set_title(f"{metric}: mean over seeds, shaded 95% confidence band")
    _save(fig, out, "--plot")


# ---------------------------------------------------------------- bnexp plot

GROUP_NOTE = "mean over seeds, shaded 95% band"


def plot_all(found, out_dir: Path, by=None, layer=None, unit: str = "0") -> list[Path]:
    """The standard figures of a run or a folder of runs, as far as their files allow:
    curves.png (learning curves), gap.png (train/inference gap), steps.png (test accuracy
    over steps, with its numbers in steps.csv), activations.png (Fig. 1 b, c percentile
    bands), drift.png. Returns the files written."""
    from bnexp import compare
    from bnexp.runs import write_text_atomic

    plt = _pyplot()
    written = []

    def save(fig, name):
        _save(fig, out_dir / name, "--out")
        written.append(out_dir / name)

    curves = {m: compare.curves(found, m, by) for m in ("train_loss", "train_acc", "test_acc")}
    if any(curves.values()):
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=110)
        for ax, (metric, series) in zip(axes, curves.items(), strict=True):
            _bands(ax, series, "epoch", metric, legend=ax is axes[-1])
        fig.suptitle(f"learning curves: {GROUP_NOTE}")
        save(fig, "curves.png")
    batch = compare.curves(found, "test_acc_batchstats", by)
    if batch:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        _gap(ax, curves["test_acc"], batch)
        save(fig, "gap.png")
    steps = compare.step_curves(found, "test_acc", by)
    if steps:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        _bands(ax, steps, "step", "test_acc")
        ax.set_title(f"test accuracy over steps (Ioffe & Szegedy Fig. 1a)\n{GROUP_NOTE}")
        save(fig, "steps.png")
        table = compare.long_table(steps)
        write_text_atomic(out_dir / "steps.csv", table.to_csv(index=False, float_format="%.4f"))
        written.append(out_dir / "steps.csv")
    layer, bands = compare.activation_bands(found, layer, unit, by)
    if bands:
        fig = _percentile_bands(plt, layer, unit, bands)
        save(fig, "activations.png")
    drift = compare.drift_curves(found, by)
    if drift:
        fig = _drift(plt, drift)
        save(fig, "drift.png")
    return written


def _gap(ax, moving: dict, batch: dict) -> None:
    for label, frame in batch.items():
        line, = ax.plot(frame["epoch"], frame["mean"], linestyle="--", marker="o",
                        markersize=3, label=f"{label}: batch statistics")
        if label in moving:
            m = moving[label]
            ax.plot(m["epoch"], m["mean"], color=line.get_color(), marker="o", markersize=3,
                    label=f"{label}: moving statistics")
    import matplotlib.ticker

    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test_acc")
    ax.set_title("train/inference gap: test accuracy with batch vs moving statistics")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _percentile_bands(plt, layer: str, unit: str, bands: dict):
    fig, axes = plt.subplots(1, len(bands), figsize=(5 * len(bands), 4), dpi=110,
                             sharey=True, squeeze=False)
    for ax, (label, frame) in zip(axes[0], bands.items(), strict=True):
        ax.fill_between(frame["step"], frame["p15"], frame["p85"], alpha=0.25,
                        label="15th-85th percentile")
        ax.plot(frame["step"], frame["p50"], label="median")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"input to {layer}, unit {unit}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("activation input percentiles on a fixed probe batch, lowest seed "
                 "(Ioffe & Szegedy Fig. 1b, c)")
    fig.tight_layout()
    return fig


def _drift(plt, drift: dict):
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    styles = ["-", "--", ":", "-."]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for g, (label, frame) in enumerate(drift.items()):
        for i, (layer, rows) in enumerate(frame.groupby("layer", sort=False)):
            for ax, column in zip(axes, ("mean_error", "variance_error"), strict=True):
                ax.plot(rows["epoch"], rows[column], marker="o", markersize=3,
                        color=colours[g % len(colours)], linestyle=styles[i % len(styles)],
                        label=f"{label}: {layer}" if label else layer)
    for ax, column in zip(axes, ("mean_error", "variance_error"), strict=True):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(column)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6)
    fig.suptitle("moving statistics vs population statistics of the current weights "
                 "(relative error, mean over seeds; colour: group, line style: layer)")
    fig.tight_layout()
    return fig


def plot_features(image, label: int, outputs: list, channels: int, out: Path) -> None:
    """One test image and, per layer (conv, BN, activation, pool), its first channels."""
    plt = _pyplot()
    cols = max(channels, 1) + 1
    fig, axes = plt.subplots(len(outputs), cols, figsize=(1.6 * cols, 1.6 * len(outputs)),
                             dpi=110, squeeze=False)
    for row, (name, maps) in zip(axes, outputs, strict=True):
        row[0].imshow(image, cmap="gray")
        row[0].set_ylabel(name, fontsize=8)
        for c, ax in enumerate(row[1:]):
            if c < maps.shape[-1]:
                ax.imshow(maps[..., c], cmap="viridis")
                ax.set_title(f"ch {c}", fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"feature maps of test image (class {label}), inference mode")
    fig.tight_layout()
    _save(fig, out, "--out")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bands(ax, series: dict, x: str, metric: str, legend: bool = True) -> None:
    """Per group its mean line and a shaded 95% band (where there are 2+ runs)."""
    import matplotlib.ticker

    for label, frame in series.items():
        line, = ax.plot(frame[x], frame["mean"], marker="o" if len(frame) < 40 else None,
                        markersize=3, label=f"{label} (n={int(frame['n_used'].max())})")
        band = frame.dropna(subset=["ci95_low", "ci95_high"])
        ax.fill_between(band[x], band["ci95_low"], band["ci95_high"],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if series and legend:
        ax.legend(fontsize=7)


def _save(fig, out: Path, option: str) -> None:
    """Write a figure atomically; BadInput naming the option if the file can't be written."""
    import matplotlib.pyplot as plt

    from bnexp.errors import BadInput
    from bnexp.runs import replace_atomically

    fig.tight_layout()
    try:
        replace_atomically(out, lambda f: fig.savefig(f, format="png"))
    except OSError as e:
        raise BadInput(f"{out}: {option}: cannot write ({e.strerror})") from None
    finally:
        plt.close(fig)
