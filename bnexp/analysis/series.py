"""Curves over epochs and steps, activation percentile bands and drift, per group of runs:
the numbers the plots draw, computed from the run folders' CSV files.

Each function returns {group label: DataFrame}; the views only draw them. No TensorFlow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from bnexp import runs
from bnexp.analysis.compare import RunTable, check_metric, compare_keys
from bnexp.errors import BadInput, did_you_mean

DEFAULT_UNIT = "0"  # activations.png's unit: the first of each layer


def curves(found: RunTable, metric: str = "test_acc", by: list[str] | None = None,
           read=None) -> dict:
    """Per group label, a DataFrame of epoch, mean, ci95_low, ci95_high, n (completed runs).
    read: a run folder's metrics as a DataFrame (default: read_metrics, once per call)."""
    check_metric(metric, "final")
    return _series(found, by, read or _metrics, "epoch", metric)


def _metrics(path: Path) -> pd.DataFrame:
    """metrics.csv as read_metrics reads it (empty without an epoch column), as a frame."""
    frame = runs.read_csv(path / "metrics.csv")
    return frame if "epoch" in frame else frame.iloc[0:0, 0:0]


def step_curves(found: RunTable, metric: str = "test_acc", by: list[str] | None = None) -> dict:
    """As `curves`, over steps, from the runs' steps.csv (diagnostics.step_metrics)."""
    return _series(found, by, lambda path: runs.read_table(path, "steps.csv"), "step", metric)


def activation_bands(found: RunTable, layer: str | None = None, unit: str = DEFAULT_UNIT,
                     by: list[str] | None = None) -> tuple[str | None, dict]:
    """(layer, {group label: DataFrame step, p15, p50, p85}) from activations.csv: one
    unit of one layer (default: the last layer, "a typical sigmoid of the last hidden
    layer") in each group's run with the lowest seed, as Ioffe & Szegedy's Fig. 1(b, c).
    BadInput naming --layer or --unit where no group's file holds that layer, or that
    unit of it (those it holds listed); the default unit of a layer recorded only as a
    whole (diagnostics.activation_units: 0) draws the layer's inputs taken together (unit
    "all": each frame's `unit` column says which)."""
    frames = {}
    for label, group in _groups(found, by):
        frame = runs.read_table(Path(group.sort_values("seed")["path"].iloc[0]),
                                "activations.csv")
        if not frame.empty:
            frames[label] = frame
    unit = str(unit)
    if not frames:
        if layer is not None or unit != DEFAULT_UNIT:
            option = f"--layer {layer}" if layer is not None else f"--unit {unit}"
            raise BadInput(f"{option}: no completed run here recorded activations.csv "
                           "(diagnostics.activations: true)")
        return layer, {}
    layer = layer if layer is not None else next(iter(frames.values()))["layer"].iloc[-1]
    layers = list(dict.fromkeys(name for f in frames.values() for name in f["layer"]))
    if layer not in layers:
        raise BadInput(f"--layer {layer}: no such layer in activations.csv (layers: "
                       f"{', '.join(layers)}){did_you_mean(layer, layers)}")
    units = list(dict.fromkeys(u for f in frames.values()
                               for u in f.loc[f["layer"] == layer, "unit"]))
    if unit not in units and (unit != DEFAULT_UNIT or "all" not in units):
        raise BadInput(f"--unit {unit}: layer {layer} has no unit {unit} in activations.csv "
                       f"(units: {', '.join(units)})")
    out = {}
    for label, frame in frames.items():
        rows = frame[(frame["layer"] == layer) & (frame["unit"] == unit)]
        if rows.empty and unit == DEFAULT_UNIT:  # this run recorded the layer whole
            rows = frame[(frame["layer"] == layer) & (frame["unit"] == "all")]
        if not rows.empty:
            out[label] = rows[["step", "unit", "p15", "p50", "p85"]].reset_index(drop=True)
    return layer, out


def drift_curves(found: RunTable, by: list[str] | None = None) -> dict:
    """Per group label, drift.csv's mean_error and variance_error per epoch and layer,
    averaged over the group's runs."""
    return averaged(found, by, "drift.csv", ["layer", "epoch"], ["mean_error", "variance_error"])


def averaged(found: RunTable, by: list[str] | None, name: str, keys: list[str],
             values: list[str], per_run=None) -> dict:
    """Per group label, the run file `name`'s `values` averaged over the group's runs at
    each combination of `keys` (in the order they first appear); per_run(frame) -> frame
    first reduces each run's file (groups without the file are left out)."""
    out = {}
    for label, group in _groups(found, by):
        frames = [runs.read_table(Path(p), name) for p in group["path"]]
        frames = [per_run(f) if per_run else f for f in frames if not f.empty]
        if frames:
            out[label] = pd.concat(frames).groupby(keys, sort=False, as_index=False)[
                values].mean()
    return out


PROBE_FILES = ("grad_norms", "weight_norms", "predictiveness")


def probe_curves(found: RunTable, by: list[str] | None = None) -> dict:
    """{probe: {group label: frame}} of the probes' files (diagnostics.grad_norms,
    weight_norms, predictiveness), means over each group's runs: gradient norms per weight
    and step; weight norms and effective learning rates per weight and epoch; and per
    step, the range over step sizes of the loss and the gradient's change (Santurkar et
    al.'s shaded regions), with the largest smoothness."""
    weight = ["layer", "weight"]
    return {
        "grad_norms": averaged(found, by, "grad_norms.csv", [*weight, "step"], ["grad_norm"]),
        "weight_norms": averaged(found, by, "weight_norms.csv", [*weight, "epoch"],
                                 ["norm", "effective_lr"]),
        "predictiveness": averaged(found, by, "predictiveness.csv", ["step"], RANGES,
                                   per_run=_ranges)}


RANGES = ["loss_low", "loss_high", "change_low", "change_high", "smoothness"]


def _ranges(frame: pd.DataFrame) -> pd.DataFrame:
    """One run's predictiveness.csv -> per step, min and max over the step sizes of the
    loss after the step and of the gradient's change, and the largest smoothness."""
    return frame.groupby("step", as_index=False).agg(
        loss_low=("loss_after", "min"), loss_high=("loss_after", "max"),
        change_low=("grad_change", "min"), change_high=("grad_change", "max"),
        smoothness=("smoothness", "max"))


def long_table(series: dict) -> pd.DataFrame:
    """{group label: frame} as one frame with a `group` column first."""
    frames = [frame.assign(group=label) for label, frame in series.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[["group", *[c for c in table.columns if c != "group"]]]


def group_count(found: RunTable, by: list[str] | None) -> int:
    """How many groups of completed runs the figures would draw: known before any file
    is read (refusing 1,000 groups took 16 s of reading 5,000 runs' CSVs first)."""
    if found.table.empty:
        return 0
    return completed(found).groupby(compare_keys(found, by), sort=False, dropna=False).ngroups


def group_values(found: RunTable, by: list[str] | None = None) -> dict[str, dict]:
    """{group label: {grouping key: its value}} for every group the figures draw: what
    legends name them by (bnexp.views.plot_words)."""
    return {label: values for label, values, _ in keyed(completed(found), compare_keys(found, by))}


def _groups(found: RunTable, by: list[str] | None):
    """(label, completed runs) per group, in `keyed`'s order. Groups are compare's rows:
    with --by, runs that also differ in another key are a group of their own (never
    pooled as seeds)."""
    if not found.table.empty:
        for label, _, group in keyed(completed(found), compare_keys(found, by)):
            yield label, group


def completed(found: RunTable) -> pd.DataFrame:
    """The completed runs' rows (what the figures draw)."""
    return found.table[found.table["status"] == "completed"] if len(found.table) else found.table


def keyed(table: pd.DataFrame, keys: list[str]):
    """(label, {key: value}, rows) per group of these keys' values: numbers ascending
    (batch sizes 2, 4, ..., 32, not 2, 32, 4), other values in the order they first
    appear (a sweep's own order: none, before, after); the label is `key=value, ...` with
    each key's last part ("all runs" without keys)."""
    if table.empty:
        return
    if not keys:
        yield "all runs", {}, table
        return
    groups = list(table.groupby(keys, sort=False, dropna=False, observed=True))
    numeric = [pd.api.types.is_numeric_dtype(table[k]) and not pd.api.types.is_bool_dtype(
        table[k]) for k in keys]
    seen = [{v: i for i, v in enumerate(dict.fromkeys(map(str, table[k])))} for k in keys]

    def order(item):
        values = item[0] if isinstance(item[0], tuple) else (item[0],)
        return [(pd.isna(v), v if number and not pd.isna(v) else first[str(v)])
                for v, number, first in zip(values, numeric, seen, strict=True)]

    for values, group in sorted(groups, key=order):
        values = values if isinstance(values, tuple) else (values,)
        yield (", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values, strict=True)),
               dict(zip(keys, values, strict=True)), group)


def _series(found: RunTable, by, read, x: str, metric: str) -> dict:
    """Per group, `metric` summarized over the runs at each value of x (epoch, step)."""
    out = {}
    for label, group in _groups(found, by):
        frames = (read(Path(path)) for path in group["path"])
        parts = [frame[[x, metric]] for frame in frames if metric in frame]
        points = pd.concat(parts, ignore_index=True) if parts else None
        if points is not None and (points := points[np.isfinite(points[metric])]).size:
            out[label] = summaries(points, x, metric)
    return out


def summaries(points: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    """What `summarize` gives for the values of `metric` at each x, for every x at once,
    sorted by x (a categorical x: in its categories' order): one `summarize` call per
    epoch took `plot runs` 11 s over a metrics.csv of 200,000 epochs."""
    out = (points.groupby(x, sort=True, observed=True)[metric]
           .agg(n_used="count", mean="mean", std="std", min="min", max="max").reset_index())
    n = out["n_used"].to_numpy()
    quantile = special.stdtrit(np.maximum(n - 1, 1), 0.975)
    half = np.where(n >= 2, quantile * out["std"].to_numpy() / np.sqrt(n), np.nan)
    out["std"] = np.where(n >= 2, out["std"], np.nan)
    out["ci95_low"], out["ci95_high"] = out["mean"] - half, out["mean"] + half
    return out


@dataclass
class Figures:
    """The numbers of `bnexp plot`'s standard figures; an empty dict: no such figure."""

    curves: dict  # metric -> {group: frame}, for train_loss, train_acc, test_acc
    batch_stats: dict  # {group: frame} of test_acc_batchstats (the gap figure)
    steps: dict  # {group: frame} of test_acc over steps
    layer: str | None  # the activations figure's layer
    unit: str
    bands: dict  # {group: frame} of p15, p50, p85 over steps
    drift: dict  # {group: frame} of mean_error, variance_error per layer and epoch
    probes: dict = field(default_factory=dict)  # probe_curves: {probe: {group: frame}}

    def any(self) -> bool:
        return any(self.curves.values()) or any(
            (self.batch_stats, self.steps, self.bands, self.drift, *self.probes.values()))

    @property
    def steps_table(self) -> pd.DataFrame:
        return long_table(self.steps)


LEARNING = ("train_loss", "train_acc", "test_acc")


def learning(found: RunTable, by: list[str] | None = None) -> Figures:
    """The learning curves' and the gap figure's numbers alone (what `bnexp report`
    draws), equal to `standard`'s: each group's metrics.csv files joined once and every
    metric summarized from that (per run and metric, as `curves` does it, took 5 s over
    1,000 runs); the other figures' files are not read."""
    metrics = (*LEARNING, "test_acc_batchstats")
    out: dict[str, dict] = {metric: {} for metric in metrics}
    for label, group in _groups(found, by):
        frames = [f for f in map(_metrics, map(Path, group["path"])) if not f.empty]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        for metric in metrics:
            if metric in table:
                points = table[["epoch", metric]]
                if (points := points[np.isfinite(points[metric])]).size:
                    out[metric][label] = summaries(points, "epoch", metric)
    return Figures({m: out[m] for m in LEARNING}, out["test_acc_batchstats"], {}, None,
                   DEFAULT_UNIT, {}, {})


def standard(found: RunTable, by: list[str] | None = None, layer: str | None = None,
             unit: str = DEFAULT_UNIT) -> Figures:
    """Every standard figure's numbers, as far as the runs' files allow."""
    read = functools.cache(_metrics)  # four figures' curves: each metrics.csv read once
    curves_ = {m: curves(found, m, by, read) for m in ("train_loss", "train_acc", "test_acc")}
    layer, bands = activation_bands(found, layer, unit, by)
    return Figures(curves_, curves(found, "test_acc_batchstats", by, read),
                   step_curves(found, "test_acc", by), layer, unit, bands,
                   drift_curves(found, by), probe_curves(found, by))
