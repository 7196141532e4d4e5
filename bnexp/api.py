"""bnexp from Python or Jupyter: the CLI's verbs as functions that return data.

    import bnexp
    runs = bnexp.train("configs/d2l_lenet_bn.yaml", set=["train.epochs=2"], smoke=True)
    bnexp.compare("runs")              # the table `bnexp compare runs` prints, a DataFrame
    bnexp.plot_curves("runs")          # a matplotlib Figure: shows inline in a notebook

The same rules as the command line: the same validation, and bad input raises
bnexp.BadInput whose message is what the CLI prints, one line per mistake (file and key
named); the same run folders, skip and resume (a finished run is not trained again).
Every argument is checked first, by its annotation (bnexp.api_args: one boundary for
every function here), before anything is read, written or imported.
Warnings about broken run folders are Python warnings (`warnings.warn`), not printed
lines.

The trap: `train` runs in this process by default (`jobs=1`), so the TensorFlow it
imports stays loaded; `jobs=0` (one process per core) or N > 1 trains in workers.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from bnexp import config as config_mod
from bnexp import runs
from bnexp.api_args import (
    Bool,
    ConfigOrPath,
    Maybe,
    MaybePath,
    MaybeStr,
    MaybeStrs,
    PathArg,
    Str,
    Strs,
    Text,
    Whole,
    checked,
    listed,
)
from bnexp.errors import BadInput
from bnexp.runs import evals as eval_csv

_TRAINING = threading.Lock()  # one training at a time per process: train()

__all__ = ["Run", "compare", "doctor", "eval", "export_mlflow", "load_run", "load_runs",
           "plot_activations", "plot_curves", "plot_drift", "plot_features", "plot_gap",
           "plot_steps", "plot_sweep", "report", "train"]


@dataclass
class Run:
    """One run folder, as read back: where it is, how it ended, what it was.

    `metrics` is metrics.csv as a DataFrame (one row per epoch), read when asked for."""

    folder: Path | None  # None: the run failed before it had a folder
    status: str  # completed, diverged, failed, interrupted, running
    config: dict = field(default_factory=dict, repr=False)  # the resolved config
    summary: dict = field(default_factory=dict, repr=False)  # summary.json

    @property
    def metrics(self) -> pd.DataFrame:
        if self.folder is None or not (self.folder / "metrics.csv").is_file():
            return pd.DataFrame(columns=runs.EPOCH_COLUMNS)
        return pd.DataFrame(runs.read_metrics(self.folder))

    @property
    def final(self) -> dict:
        """The last epoch's metrics (summary.json's `final`)."""
        return dict(self.summary.get("final") or {})

    @property
    def evals(self) -> pd.DataFrame:
        """eval.csv as a DataFrame: one row per `bnexp eval` of the run's checkpoint
        (evaluated_at, epoch, data, shift, stats, batch_size, examples, loss, acc), in the
        order they were made; no rows where it was never evaluated."""
        rows = eval_csv.read(self.folder) if self.folder is not None else []
        return pd.DataFrame(rows, columns=eval_csv.COLUMNS)


@checked
def load_run(folder: PathArg) -> Run:
    """The run in `folder` (a folder with summary.json); BadInput if it is none."""
    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise BadInput(f"{folder}: not a run folder (no summary.json)")
    try:
        record = runs.read_record(folder, with_config=True)
    except ValueError as e:
        raise BadInput(f"{folder}: not a readable run folder: {e}") from None
    return Run(folder, record.status, record.config or {}, record.summary)


@checked
def train(config: ConfigOrPath, *, set: MaybeStrs = None, runs_dir: PathArg = "runs",
          jobs: Annotated[int, Whole(0)] = 1, smoke: Bool = False, force: Bool = False,
          name: MaybeStr = None) -> list[Run]:
    """`bnexp train`: one Run per sweep cell and seed, in the config's order.

    config: a YAML file's path, a dict of the same keys, or a Config. set: overrides as
    on the command line ("model.bn.placement=after"). jobs: runs at once (1: in this
    process; 0: one worker process per core). A run that fails or diverges is a Run with
    that status, not an exception; Ctrl-C (interrupting the kernel) marks the run
    interrupted and raises KeyboardInterrupt; the same call again resumes it. Calls from
    several threads train one after another (Keras' state is the process's), each
    planning only once the one before has ended, so no run is trained twice."""
    from bnexp import sweep
    from bnexp.views.progress import make_reporter

    overrides = [*(listed(set) or []), *([f"name={name}"] if name is not None else [])]
    specs = _specs(config, overrides)
    if smoke:
        specs = config_mod.smoke_specs(specs)
    with _TRAINING, _stop_handling():
        outcomes = sweep.run_all(specs, Path(runs_dir), make_reporter(), jobs=jobs,
                                 force=force)
    return [load_run(o.path) if o.path is not None else Run(None, o.status)
            for o in outcomes]


def _specs(config, overrides: list[str]) -> list:
    """The RunSpecs of a path, a dict or a Config (their source: the name messages give
    it), as @checked passed them."""
    if isinstance(config, str | os.PathLike):
        return config_mod.load(Path(config), overrides)
    if isinstance(config, config_mod.Config):
        config = config.model_dump(mode="json", exclude_defaults=True)
    source = "config (dict)"
    raw = copy.deepcopy(config)
    raw.setdefault("name", "run")
    raw = config_mod.apply_overrides(raw, overrides, source)
    return config_mod.expand(raw, source=source, overrides=overrides)


def _stop_handling():
    """Ctrl-C handling as in the CLI (the run records `interrupted`) where signals can be
    handled (the main thread); elsewhere no handler."""
    import contextlib
    import threading

    from bnexp.training import stop

    if threading.current_thread() is threading.main_thread():
        return stop.handling()
    return contextlib.nullcontext()


@checked
def load_runs(runs_dir: PathArg) -> pd.DataFrame:
    """Every run beneath runs_dir, one row each (of several attempts of one config and
    seed, the one that counts): run_id, path, status, seed, config keys as dotted
    columns, final_* and best_* metrics (best: every metric at the epoch of the best
    val_acc, best_epoch, best_selected_by; empty for run folders of an older bnexp,
    whose best was chosen per metric: compare(at="best") chooses from metrics.csv). Like
    MLflow's search_runs."""

    found = _load(runs_dir)
    return found.table.drop(columns=[c for c in found.table if c == "started"])


@checked
def compare(runs_dir: PathArg, *, by: MaybeStrs = None, metric: Str = "test_acc",
            at: Str = "final", baseline: MaybeStr = None, per_run: Bool = False,
            select: MaybeStr = None, columns: MaybeStrs = None) -> pd.DataFrame:
    """`bnexp compare`: one row per group of runs that differ only by seed (counts, mean,
    std, min, max, 95% CI; with baseline "KEY=VALUE", the difference, p-value, Holm's p
    and effect size against that group). per_run: one row per run instead (`--runs`);
    select: `--at best`'s validation metric; columns: `--columns`. What the CLI says on
    stderr beside the table (a --by split, tests on few seeds) are Python warnings."""
    from bnexp.analysis import compare as compare_mod

    table = compare_mod.frame(_load(runs_dir), metric, at, listed(by), baseline, per_run,
                              select=select, columns=listed(columns))
    _warn(table.attrs.get("warnings", []))
    return table


@checked
def eval(path: PathArg, *, shift: MaybeStrs = None, data: MaybePath = None,
         stats: Str = "population",
         batch_size: Annotated[int | None, Maybe(Whole(1))] = None) -> pd.DataFrame:
    """`bnexp eval`: the run folder `path` (or every run with a checkpoint beneath it)
    measured again from its checkpoint, without training: one row per run (run_id, path,
    and the row appended to its eval.csv: evaluated_at, epoch, data, shift, stats,
    batch_size, examples, loss, acc). shift: "noise=80", "rotate=90", "contrast=0.5",
    "invert", or a list applied in order; data: a folder of IDX test files in place of
    the run's test set; stats: "population" (moving statistics), "batch" (each batch's
    own, batches of batch_size, default the run's data.batch_size) or "adapt" (AdaBN:
    recomputed on the test images). Starts TensorFlow, after the checks; runs skipped
    in a folder are Python warnings."""
    from bnexp.analysis import eval_plan
    from bnexp.tfquiet import import_tensorflow

    request = eval_plan.Request.of(shift, Path(data) if data is not None else None, stats,
                                   batch_size)
    targets, found_warnings = eval_plan.plan(Path(path), request)
    _warn(found_warnings)
    import_tensorflow()
    from bnexp.analysis import evaluate

    rows, more = evaluate.evaluate_all(targets, request)
    _warn(more)
    return pd.DataFrame(rows, columns=["run_id", "path", *eval_csv.COLUMNS])


@checked
def doctor(path: PathArg) -> pd.DataFrame:
    """`bnexp doctor`: one row per finding (run, id, severity, evidence, advice), most
    serious first per run; no rows when nothing was found."""
    from bnexp.analysis import doctor as doctor_mod

    findings, found_warnings = doctor_mod.diagnose_all(Path(path))
    _warn(found_warnings)
    return pd.DataFrame([f.to_dict() for f in findings],
                        columns=["run", "id", "severity", "evidence", "advice"])


# ---------------------------------------------------------------- figures


@checked
def report(runs_dir: PathArg, *, out: PathArg = "report.html", by: MaybeStrs = None,
           metric: Str = "test_acc", baseline: MaybeStr = None) -> list[Path]:
    """`bnexp report`: the study under runs_dir as one self-contained page (out: .html)
    or Markdown with its figures beside it (out: .md); the files written. by, metric,
    baseline: as compare's. No TensorFlow."""
    from bnexp.analysis import study
    from bnexp.views import report as report_view

    report_view.check_out(Path(out))
    found = study.gather(Path(runs_dir), by=listed(by), metric=metric, baseline=baseline)
    figures, notes = report_view.draw(found)
    found.warnings += notes  # on the page as on stderr
    _warn(found.warnings)
    return report_view.write(found, figures, Path(out))


@checked
def export_mlflow(runs_dir: PathArg, *, tracking_uri: Str = "sqlite:///mlflow.db",
                  experiment: MaybeStr = None) -> pd.DataFrame:
    """`bnexp export mlflow`: every run beneath runs_dir into MLflow (docs/mlflow.md);
    one row per run: folder, bnexp_run_id, mlflow_run_id, action (created, updated,
    unchanged), metric_steps and params sent. Needs `pip install 'bnexp[mlflow]'`."""
    from bnexp import mlflow_export

    found: list[str] = []
    done = mlflow_export.export(Path(runs_dir), tracking_uri, experiment, warn=found.append)
    _warn(found)
    return pd.DataFrame(done)


@checked
def plot_curves(runs_dir: PathArg, *, by: MaybeStrs = None,
                metrics: Strs = ("train_loss", "train_acc", "test_acc"), band: Str = "ci",
                labels: MaybeStrs = None):
    """Learning curves per group (mean over seeds and a band: "ci", "std" or "none"), a
    panel per metric. labels: `--label`'s KEY=VALUE=TEXT renames."""
    from bnexp.analysis import series
    from bnexp.views import plots

    by = listed(by)
    found, names = _named(runs_dir, by, labels, band)
    panels = {m: names(series.curves(found, m, by)) for m in metrics}
    panels = {m: c for m, c in panels.items() if c}
    if not panels:
        raise BadInput(f"{runs_dir}: nothing to plot (no completed run with metrics)")
    return _shown(plots.figure_curves(panels, "epoch", "learning curves", band=band))


@checked
def plot_gap(runs_dir: PathArg, *, by: MaybeStrs = None, labels: MaybeStrs = None):
    """Test accuracy with the moving statistics and with batch statistics, per group."""
    from bnexp.analysis import series
    from bnexp.views import plots

    by = listed(by)
    found, names = _named(runs_dir, by, labels)
    batch = names(series.curves(found, "test_acc_batchstats", by))
    if not batch:
        raise BadInput(f"{runs_dir}: no test_acc_batchstats column "
                       "(diagnostics.batch_stats_eval was off)")
    return _shown(plots.figure_gap(names(series.curves(found, "test_acc", by)), batch))


@checked
def plot_steps(runs_dir: PathArg, *, by: MaybeStrs = None, band: Str = "ci",
               labels: MaybeStrs = None):
    """Test accuracy over training steps (diagnostics.step_metrics)."""
    from bnexp.analysis import series
    from bnexp.views import plots

    by = listed(by)
    found, names = _named(runs_dir, by, labels, band)
    steps = names(series.step_curves(found, "test_acc", by))
    if not steps:
        raise BadInput(f"{runs_dir}: no steps.csv (diagnostics.step_metrics was off)")
    return _shown(plots.figure_curves({"test_acc": steps}, "step", "test accuracy over steps",
                                      size=(6.4, 4.2), band=band))


@checked
def plot_activations(runs_dir: PathArg, *, layer: MaybeStr = None,
                     unit: Annotated[str | int, Text(numbers=True)] = "0",
                     by: MaybeStrs = None, labels: MaybeStrs = None):
    """The 15th, 50th and 85th percentiles of a layer's inputs to its activation over
    steps (Ioffe & Szegedy Fig. 1 b, c; diagnostics.activations)."""
    from bnexp.analysis import series
    from bnexp.views import plots

    by, unit = listed(by), str(unit)
    found, names = _named(runs_dir, by, labels)
    layer, bands = series.activation_bands(found, layer, unit, by)
    if not bands or layer is None:
        raise BadInput(f"{runs_dir}: no activations.csv (diagnostics.activations was off)")
    return _shown(plots.figure_bands(layer, unit, names(bands)))


@checked
def plot_drift(runs_dir: PathArg, *, by: MaybeStrs = None, labels: MaybeStrs = None):
    """How far the moving statistics are from the true ones, per layer and epoch."""
    from bnexp.analysis import series
    from bnexp.views import plots

    by = listed(by)
    found, names = _named(runs_dir, by, labels)
    drift = names(series.drift_curves(found, by))
    if not drift:
        raise BadInput(f"{runs_dir}: no drift.csv (diagnostics.drift was off)")
    return _shown(plots.figure_drift(drift))


@checked
def plot_sweep(runs_dir: PathArg, *, x: Str, by: MaybeStrs = None, metric: Str = "test_acc",
               band: Str = "ci", labels: MaybeStrs = None):
    """`bnexp plot sweep`: `metric` at the final epoch (or NAME_error, 1 - NAME_acc)
    against the config key x, one line per group, mean and interval over seeds."""
    from bnexp.analysis import sweep_points
    from bnexp.views import plot_words
    from bnexp.views.plot_sweep import figure_sweep, left_out

    plot_words.check_band(band)
    points = sweep_points.sweep(_load(runs_dir), x, listed(by), metric)
    names = plot_words.legend_names(points.values, listed(labels))
    _warn([*points.notes, *(f"not drawn: {line}" for line in left_out(points, names))])
    return _shown(figure_sweep(points, names, band))


def _named(runs_dir, by, labels, band: str = "ci"):
    """(the runs, a function that renames a {group label: frame} to the groups' legend
    names, as `bnexp plot runs` names them)."""
    from bnexp.analysis import series
    from bnexp.views import plot_words

    plot_words.check_band(band)
    found = _load(runs_dir)
    names = plot_words.legend_names(series.group_values(found, by), listed(labels))
    return found, lambda groups: {names.get(label, label): f for label, f in groups.items()}


@checked
def plot_features(run_dir: PathArg, *, image: Annotated[int, Whole(0)] = 0,
                  channels: Annotated[int, Whole(1)] = 6):
    """`bnexp plot features`: test image number `image` through the layers before the
    first flatten, `channels` channels each, inference mode (loads the run's checkpoint,
    so TensorFlow starts)."""
    from bnexp.tfquiet import import_tensorflow
    from bnexp.views import plots

    import_tensorflow()
    from bnexp.analysis import features

    picture, label, outputs = features.feature_maps(Path(run_dir), image)
    return _shown(plots.figure_features(picture, label, outputs, channels,
                                        class_names=features.class_names(Path(run_dir))))


def _load(runs_dir):
    from bnexp.analysis import compare as compare_mod

    found = compare_mod.load(Path(runs_dir))
    _warn(found.warnings)
    return found


def _warn(messages: list[str]) -> None:
    """Each message a Python warning, shown at the line of the user's code that called
    bnexp (the first frame outside this module and the boundary's wrapper)."""
    import sys

    from bnexp import api_args

    ours = {__file__, api_args.__file__}
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename in ours:
        level, frame = level + 1, frame.f_back
    for message in messages:
        warnings.warn(message, stacklevel=level)


def _shown(fig: Any):
    """The figure, displayable inline: in IPython (a Jupyter kernel), a Figure shows as a
    PNG once a PNG formatter is registered for it. matplotlib's inline backend registers
    one when pyplot loads it; bnexp draws without pyplot, so it registers the same one."""
    import sys

    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            from IPython.core.pylabtools import print_figure
            from matplotlib.figure import Figure

            png = shell.display_formatter.formatters["image/png"]
            if Figure not in png.type_printers:
                png.for_type(Figure, lambda f: print_figure(f, "png", bbox_inches="tight"))
    return fig
