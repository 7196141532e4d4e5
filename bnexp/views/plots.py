"""The figures of `bnexp plot runs` and `compare --plot`: learning curves, the
train/inference gap, steps, activation percentile bands, drift. They draw numbers
computed elsewhere (bnexp.analysis.series) and write each file atomically, as PNG, SVG or
PDF. `plot sweep`'s figure: plot_sweep; `plot features`': plot_features; the canvas,
files and legends every figure shares: plot_parts; the words they print: plot_words.

Each figure has a `figure_xxx(...) -> Figure` builder (what tests and the Python API
use). Figures are made without pyplot (matplotlib.figure.Figure): no global figure list
to close, nothing shown twice in a notebook. Legends sit outside the axes, below the
panels (constrained layout and a tight bounding box keep them whole); no legend covers
data. Groups arrive under the names they are shown by (plot_words.legend_names).
"""

from __future__ import annotations

from pathlib import Path

from bnexp.runs import write_files, write_folder
from bnexp.views.plot_features import FASHION_MNIST, figure_features, plot_features
from bnexp.views.plot_parts import (
    DPI,
    LINESTYLES,
    MARKERS,
    MAX_GROUPS,
    MAX_LABEL,
    MAX_TITLE,
    axis,
    check_group_count,
    counts,
    format_of,
    grid,
    interval,
    legend,
    legend_height,
    marker_size,
    plain_log_labels,
    render,
    shown,
    subplots,
    title,
)
from bnexp.views.plot_probes import (
    figure_grad_norms,
    figure_predictiveness,
    figure_weight_norms,
)
from bnexp.views.plot_words import axis_words, band_note

__all__ = ["DPI", "FASHION_MNIST", "MAX_GROUPS", "MAX_LABEL", "MAX_TITLE", "check_group_count",
           "figure_features", "format_of", "plot_features", "png", "render", "shown"]
MOVING, BATCH = "tab:blue", "tab:orange"


def plot_curves(curves: dict, metric: str, out: Path, band: str = "ci", dpi: int = DPI) -> None:
    """`compare --plot`: learning curves of one metric, one line per group; PNG, SVG or
    PDF by out's suffix."""
    fig = figure_curves_of(curves, metric, band=band)
    write_files([(out, render(fig, format_of(out, "--plot"), dpi), "--plot")])


def figure_curves_of(curves: dict, metric: str, where: str = "--plot", band: str = "ci"):
    """`compare --plot`'s figure: learning curves of one metric, one line per group."""
    check_group_count(len(curves), where)
    return figure_curves({metric: curves}, "epoch", f"{axis_words(metric)} per epoch",
                         size=(6.4, 4.2), band=band)


def png(fig) -> bytes:
    """A figure as PNG bytes at the default dpi."""
    return render(fig, "png", DPI)


# ---------------------------------------------------------------- bnexp plot runs

PROBES = {"grad_norms": figure_grad_norms, "weight_norms": figure_weight_norms,
          "predictiveness": figure_predictiveness}
LACK = {"gap": "test_acc_batchstats", "steps": "steps.csv",
        "activations": "rows of this layer and unit in activations.csv", "drift": "drift.csv",
        **{name: f"{name}.csv" for name in PROBES}}
WHY = {"gap": "no run recorded test_acc_batchstats (diagnostics.batch_stats_eval: true)",
       "steps": "no run wrote steps.csv (diagnostics.step_metrics: true)",
       "activations": "no run wrote activations.csv (diagnostics.activations: true)",
       "drift": "no run wrote drift.csv (diagnostics.drift: N, a BN model)",
       **{name: f"no run wrote {name}.csv (diagnostics.{name}: true)" for name in PROBES}}


def plot_all(figures, out_dir: Path, where: str = "plot runs", **style) -> list[Path]:
    """The standard figures of a run or a folder of runs (an analysis.series.Figures) as
    far as their files allow, written into out_dir (render_all: which, and `style`). All
    are drawn before the first is written (`write_folder`). Returns the files written."""
    return write_folder(out_dir, render_all(figures, where, **style), "--out")


def render_all(figures, where: str = "plot runs", *, names: dict | None = None,
               band: str = "ci", fmt: str = "png", dpi: int = DPI) -> dict[str, bytes]:
    """plot_all's files, drawn in memory: {file name: its bytes}: curves (learning
    curves), gap (train/inference gap), steps (test accuracy over steps, with its numbers
    in steps_by_group.csv: not steps.csv, a run's own file, which a plot into a run folder
    replaced), activations (Fig. 1 b, c percentile bands), drift, and the probes'
    grad_norms, weight_norms, predictiveness; each .png, .svg or .pdf
    (fmt). names: {group label: its name in the figures} (default: the labels); `where`
    starts a message about too many groups."""
    check_group_count(max(map(len, [*figures.curves.values(), figures.batch_stats,
                                    figures.steps, figures.bands, figures.drift,
                                    *figures.probes.values()]), default=0),
                      where)

    def named(series: dict) -> dict:
        return {(names or {}).get(label, label): frame for label, frame in series.items()}

    drawn = {}
    curves = {m: named(s) for m, s in figures.curves.items() if s}
    if curves:
        drawn["curves"] = figure_curves(curves, "epoch", "learning curves", band=band)
    if figures.batch_stats:
        drawn["gap"] = figure_gap(named(figures.curves.get("test_acc", {})),
                                  named(figures.batch_stats))
    if figures.steps:
        drawn["steps"] = figure_curves({"test_acc": named(figures.steps)}, "step",
                                       "test accuracy over steps (Ioffe & Szegedy Fig. 1a)",
                                       size=(6.4, 4.2), band=band)
    if figures.bands:
        drawn["activations"] = figure_bands(figures.layer, figures.unit, named(figures.bands))
    if figures.drift:
        drawn["drift"] = figure_drift(named(figures.drift))
    for name, draw in PROBES.items():
        if figures.probes.get(name):
            drawn[name] = draw(named(figures.probes[name]))
    files = {}
    for name, fig in drawn.items():
        files[f"{name}.{fmt}"] = render(fig, fmt, dpi)
        if name == "steps":  # the group labels as they are: names may leave out a key
            text = figures.steps_table.to_csv(index=False, float_format="%.4f")
            files["steps_by_group.csv"] = text.encode("utf-8", "backslashreplace")
    return files


def not_drawn(figures, names: dict | None = None, fmt: str = "png") -> list[str]:
    """What plot runs leaves out and why, one line each: a standard figure no run has the
    files for, and the groups a drawn figure is without."""
    names = names or {}
    every = list(dict.fromkeys(label for s in figures.curves.values() for label in s))
    notes = []
    probes = [(name, figures.probes[name]) for name in PROBES if figures.probes.get(name)]
    for name, series in (("gap", figures.batch_stats), ("steps", figures.steps),
                         ("activations", figures.bands), ("drift", figures.drift), *probes):
        if not series:
            why = WHY[name]
            if name == "activations" and figures.layer is not None:
                why = f"no group has unit {figures.unit} of layer {figures.layer}"
            notes.append(f"{name}.{fmt} not drawn: {why}")
        elif missing := [names.get(label, label) for label in every if label not in series]:
            notes.append(f"{name}.{fmt} drawn without {', '.join(missing)}: their runs "
                         f"have no {LACK[name]}")
    return notes


def figure_curves(panels: dict, x: str, heading: str, size=None, band: str = "ci"):
    """Curves: one panel per metric (side by side), per group its mean over seeds and a
    shaded band (band: ci, std or none). Groups keep one colour, line style and hollow
    marker in every panel, so lines that coincide stay visible; one legend for all
    panels, below them. The title says what a line and its band are."""
    names = shown(label for series in panels.values() for label in series)
    labels = list(names)
    sizes = counts({label: f for series in panels.values() for label, f in series.items()})
    ns = [int(n) for series in panels.values() for f in series.values() for n in f["n_used"]]
    ncols = 4  # as many as the width holds
    width, height = size or (3.8 * len(panels) + 0.6, 3.6)
    fig, axes = subplots(1, len(panels), figsize=(width, height + legend_height(labels, ncols)))
    for ax, (metric, series) in zip(axes[0], panels.items(), strict=True):
        for label, frame in series.items():
            _curve(ax, frame, x, labels.index(label), names[label] + sizes[label], band)
        axis(ax, axis_words(x), axis_words(metric))
        means = [v for f in series.values() for v in f["mean"] if v == v]
        if metric.endswith("_loss") and means and min(means) > 0 and max(means) > 100 * min(means):
            ax.set_yscale("log")  # a diverging run's loss of 1e4 flattened every other curve
            plain_log_labels(ax)
    title(fig, f"{heading}\n{band_note(band, ns)}")
    legend(fig, axes[0], ncols=ncols)
    return fig


def _curve(ax, frame, x: str, i: int, label: str, band: str) -> None:
    """One group's mean line (style number i) and its band, where there are 2+ runs."""
    colour = f"C{i % 10}"
    size = marker_size(len(frame))
    ax.plot(frame[x], frame["mean"], color=colour, linestyle=LINESTYLES[i % len(LINESTYLES)],
            marker=MARKERS[i % len(MARKERS)] if size else None, markersize=size or 0,
            markerfacecolor="none", linewidth=1.4, alpha=0.9, label=label)
    edges = interval(frame, band)
    if edges is not None:
        rows, low, high = edges
        ax.fill_between(rows[x], low, high, color=colour, alpha=0.12, linewidth=0)


def figure_gap(moving: dict, batch: dict):
    """The train/inference gap: one panel per group, test accuracy evaluated with the
    moving statistics (inference mode) and with the test batch's own statistics; the
    shaded space between the two curves is the gap (its last-epoch value in the title)."""
    fig, axes = grid(len(batch), 2.9, 2.4)
    names = shown(batch, MAX_TITLE)
    for ax, (label, frame) in zip(axes, batch.items(), strict=True):
        heading, m = names[label], moving.get(label)
        size = marker_size(len(frame)) or 0
        if m is not None:
            ax.plot(m["epoch"], m["mean"], color=MOVING, marker="o", markersize=size,
                    label="moving statistics (inference mode)")
        ax.plot(frame["epoch"], frame["mean"], color=BATCH, linestyle="--", marker="s",
                markersize=size, label="batch statistics (test batch)")
        both = frame.merge(m, on="epoch", suffixes=("_b", "_m")) if m is not None else None
        if both is not None and not both.empty:
            ax.fill_between(both["epoch"], both["mean_m"], both["mean_b"], color="0.5",
                            alpha=0.3, linewidth=0, label="gap (shaded)")
            gap = both["mean_m"].iloc[-1] - both["mean_b"].iloc[-1]
            heading = f"{names[label]}\nlast epoch: moving - batch = {gap:+.3f}"
        ax.set_title(heading, fontsize=8)
        axis(ax, "epoch", "test accuracy")
    ns = [int(n) for f in batch.values() for n in f["n_used"]]
    title(fig, "train/inference gap: test accuracy with moving vs batch statistics\n"
          + band_note("none", ns))
    legend(fig, axes)
    return fig


def figure_bands(layer: str, unit: str, bands: dict):
    """Activation input percentiles (Ioffe & Szegedy Fig. 1b, c): one panel per group, the
    15th-85th percentile band and the median of one unit's input on a fixed probe batch,
    over steps, for the group's run with the lowest seed. A frame with a `unit` column says
    which unit it holds ("all": the layer's inputs taken together)."""
    fig, axes = grid(len(bands), 3.4, 3.0)
    names = shown(bands, MAX_TITLE)
    for ax, (label, frame) in zip(axes, bands.items(), strict=True):
        ax.fill_between(frame["step"], frame["p15"], frame["p85"], alpha=0.25,
                        linewidth=0, label="15th-85th percentile")
        ax.plot(frame["step"], frame["p50"], label="median")
        ax.set_title(names[label], fontsize=8)
        axis(ax, "training step", None)
    units = {str(u) for f in bands.values() if "unit" in f for u in f["unit"]} or {str(unit)}
    which = ("all units together" if units == {"all"} else f"unit {unit}" if "all" not in units
             else f"unit {unit}; all units together where only those were recorded")
    axes[0].set_ylabel(f"input to {layer}\n({which})")
    title(fig, "activation input percentiles on a fixed probe batch, lowest seed "
          "(Ioffe & Szegedy Fig. 1b, c)")
    legend(fig, axes[:1])
    return fig


def figure_drift(drift: dict):
    """Drift: relative error of the moving mean and variance against the population
    statistics of the current weights, per epoch (log scale, mean over seeds). One row of
    two panels (mean, variance) per group, so groups never hide one another; colour and
    marker are the layer, explained in the legend below."""
    every_layer = {layer for frame in drift.values() for layer in frame["layer"]}
    height = 2.3 * len(drift) + 1 + legend_height(every_layer, 4)  # 120 BN layers' legend
    fig, axes = subplots(len(drift), 2, figsize=(8, height),  # squeezed the panels to nothing
                         sharex=True, sharey="col")
    layers: list = []
    names = shown(drift)
    logarithmic = {column: any((frame[column] > 0).any() for frame in drift.values())
                   for column in ("mean_error", "variance_error")}  # log: only of a positive
    for row, (label, frame) in zip(axes, drift.items(), strict=True):
        for layer, rows in frame.groupby("layer", sort=False):
            layers += [] if layer in layers else [layer]
            i = layers.index(layer)
            for ax, column in zip(row, ("mean_error", "variance_error"), strict=True):
                ax.plot(rows["epoch"], rows[column], color=f"C{i % 10}",
                        linestyle=LINESTYLES[i % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                        markersize=4, markerfacecolor="none", label=f"layer {layer}")
        for ax, column in zip(row, ("mean_error", "variance_error"), strict=True):
            axis(ax, "epoch", axis_words(column))
            if logarithmic[column]:
                ax.set_yscale("log")
                plain_log_labels(ax)
            ax.set_title(names[label] or "all runs", fontsize=8)
            ax.tick_params(labelbottom=True)
    title(fig, "drift: moving vs population statistics of the current weights\n"
          "(relative error, mean over seeds)")
    legend(fig, axes.flat, ncols=4)
    return fig
