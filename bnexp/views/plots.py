"""Figures as PNG files: learning curves, the train/inference gap, steps, activation
percentile bands, drift, feature maps. They draw numbers computed elsewhere
(bnexp.analysis.series, bnexp.analysis.features) and write each file atomically.

Each figure has a `figure_xxx(...) -> Figure` builder (what tests and the Python API
use) and is saved by `_save`. Figures are made without pyplot (matplotlib.figure.Figure):
no global figure list to close, nothing shown twice in a notebook. Legends sit outside
the axes, below the panels (constrained layout and a tight bounding box keep them
whole); no legend covers data.
"""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path

import numpy as np

from bnexp import data
from bnexp.errors import BadInput
from bnexp.runs import write_files, write_folder

FASHION_MNIST = data.CLASS_NAMES["fashion_mnist"]
# Groups one figure shows (a line, panel or row each) and the characters of a group's
# label it prints. The trap: both come from the runs, so 150 groups drew for a minute
# into panels collapsed to nothing, and a 120 KB config value made a legend that wide
MAX_GROUPS, MAX_LABEL, MAX_TITLE = 40, 60, 40  # a title: over a small panel
GROUP_NOTE = "mean over seeds, shaded 95% band"
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
MOVING, BATCH = "tab:blue", "tab:orange"


def plot_curves(curves: dict, metric: str, out: Path) -> None:
    """`compare --plot`: learning curves of one metric, one line per group."""
    _save(figure_curves_of(curves, metric), out, "--plot")


def figure_curves_of(curves: dict, metric: str, where: str = "--plot"):
    """`compare --plot`'s figure: learning curves of one metric, one line per group."""
    check_group_count(len(curves), where)
    return figure_curves({metric: curves}, "epoch", f"{metric}: {GROUP_NOTE}", size=(6.4, 4.2))


# ---------------------------------------------------------------- bnexp plot


def plot_all(figures, out_dir: Path, where: str = "plot runs") -> list[Path]:
    """The standard figures of a run or a folder of runs (an analysis.series.Figures), as
    far as their files allow: curves.png (learning curves), gap.png (train/inference
    gap), steps.png (test accuracy over steps, with its numbers in steps_by_group.csv:
    not steps.csv, a run's own file, which a plot into a run folder replaced),
    activations.png (Fig. 1 b, c percentile bands), drift.png. All are drawn before the
    first is written (`write_folder`). Returns the files written; `where` starts a
    message about too many groups."""
    return write_folder(out_dir, render_all(figures, where), "--out")


def render_all(figures, where: str = "plot runs") -> dict[str, bytes]:
    """plot_all's files, drawn in memory: {file name: its bytes}."""
    check_group_count(max(map(len, [*figures.curves.values(), figures.batch_stats,
                                    figures.steps, figures.bands, figures.drift]), default=0),
                      where)
    files = {}
    curves = {m: s for m, s in figures.curves.items() if s}
    if curves:
        files["curves.png"] = png(figure_curves(curves, "epoch",
                                                f"learning curves: {GROUP_NOTE}"))
    if figures.batch_stats:
        files["gap.png"] = png(figure_gap(figures.curves.get("test_acc", {}),
                                          figures.batch_stats))
    if figures.steps:
        files["steps.png"] = png(figure_curves(
            {"test_acc": figures.steps}, "step",
            f"test accuracy over steps (Ioffe & Szegedy Fig. 1a)\n{GROUP_NOTE}",
            size=(6.4, 4.2)))
        text = figures.steps_table.to_csv(index=False, float_format="%.4f")
        files["steps_by_group.csv"] = text.encode("utf-8", "backslashreplace")
    if figures.bands:
        files["activations.png"] = png(figure_bands(figures.layer, figures.unit, figures.bands))
    if figures.drift:
        files["drift.png"] = png(figure_drift(figures.drift))
    return files


def check_png(path: Path, option: str) -> None:
    """BadInput unless path ends in .png: bnexp draws PNG (p.pdf held PNG bytes)."""
    if path.suffix.lower() != ".png":
        raise BadInput(f"{path}: {option}: bnexp draws PNG files; name it .png")


def check_group_count(groups: int, where: str) -> None:
    """BadInput, before anything is drawn, where one figure would hold more than
    MAX_GROUPS groups."""
    if groups > MAX_GROUPS:
        raise BadInput(f"{where}: {groups} groups of runs, more than the {MAX_GROUPS} one "
                       "figure can show; choose fewer with --by KEY, or plot a subfolder")


def shown(labels, limit: int = MAX_LABEL) -> dict[str, str]:
    """Each group label as a figure prints it: at most `limit` characters, its middle left
    out (the start names the key, the end often tells groups apart), and still one name
    per group (" #2" where two shortened labels would read the same)."""
    names: dict[str, str] = {}
    head = (limit - 3) // 2
    for label in dict.fromkeys(labels):
        short = label if len(label) <= limit else f"{label[:head]}...{label[-(limit - 3 - head):]}"
        name, k = short, 1
        while name in names.values():
            k += 1
            name = f"{short} #{k}"
        names[label] = name
    return names


def png(fig) -> bytes:
    """A figure drawn as PNG bytes, in memory: nothing is written until all are drawn."""
    buffer = io.BytesIO()
    # the figure's own dpi: a user's matplotlibrc with savefig.dpi 20000 ate the memory
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight", pad_inches=0.1)
    return buffer.getvalue()


def figure_curves(panels: dict, x: str, title: str, size=None):
    """Learning curves: one panel per metric (side by side), per group its mean over seeds
    and shaded 95% band. Groups keep one colour, line style and hollow marker in every
    panel, so lines that coincide stay visible; one legend for all panels, below them."""
    names = shown(label for series in panels.values() for label in series)
    labels = list(names)
    ncols = 2 if len(panels) == 1 else 4
    width, height = size or (3.8 * len(panels) + 0.6, 3.6)
    fig, axes = _subplots(1, len(panels), figsize=(width, height + _legend_height(labels, ncols)),
                          dpi=120)
    for ax, (metric, series) in zip(axes[0], panels.items(), strict=True):
        for label, frame in series.items():
            _curve(ax, frame, x, labels.index(label), names[label])
        _axis(ax, x, metric)
    fig.suptitle(title, fontsize=10)
    _legend(fig, axes[0], ncols=ncols)
    return fig


def _curve(ax, frame, x: str, i: int, label: str) -> None:
    """One group's mean line (style number i) and its 95% band, where there are 2+ runs."""
    colour = f"C{i % 10}"
    ax.plot(frame[x], frame["mean"], color=colour, linestyle=LINESTYLES[i % len(LINESTYLES)],
            marker=MARKERS[i % len(MARKERS)] if len(frame) < 40 else None, markersize=5,
            markerfacecolor="none", linewidth=1.4, alpha=0.9,
            label=f"{label} (n={int(frame['n_used'].max())})")
    band = frame.dropna(subset=["ci95_low", "ci95_high"])
    ax.fill_between(band[x], band["ci95_low"], band["ci95_high"], color=colour, alpha=0.15,
                    linewidth=0)


def figure_gap(moving: dict, batch: dict):
    """The train/inference gap: one panel per group, test accuracy evaluated with the
    moving statistics (inference mode) and with the test batch's own statistics; the
    shaded space between the two curves is the gap (its last-epoch value in the title)."""
    fig, axes = _grid(len(batch), 2.9, 2.4)
    names = shown(batch, MAX_TITLE)
    for ax, (label, frame) in zip(axes, batch.items(), strict=True):
        title, m = names[label], moving.get(label)
        if m is not None:
            ax.plot(m["epoch"], m["mean"], color=MOVING, marker="o", markersize=3,
                    label="moving statistics (inference mode)")
        ax.plot(frame["epoch"], frame["mean"], color=BATCH, linestyle="--", marker="s",
                markersize=3, label="batch statistics (test batch)")
        both = frame.merge(m, on="epoch", suffixes=("_b", "_m")) if m is not None else None
        if both is not None and not both.empty:
            ax.fill_between(both["epoch"], both["mean_m"], both["mean_b"], color="0.5",
                            alpha=0.3, linewidth=0, label="gap (shaded)")
            gap = both["mean_m"].iloc[-1] - both["mean_b"].iloc[-1]
            title = f"{names[label]}\nlast epoch: moving - batch = {gap:+.3f}"
        ax.set_title(title, fontsize=8)
        _axis(ax, "epoch", "test_acc")
    fig.suptitle("train/inference gap: test accuracy, moving vs batch statistics "
                 "(mean over seeds)", fontsize=10)
    _legend(fig, axes)
    return fig


def figure_bands(layer: str, unit: str, bands: dict):
    """Activation input percentiles (Ioffe & Szegedy Fig. 1b, c): one panel per group, the
    15th-85th percentile band and the median of one unit's input on a fixed probe batch,
    over steps, for the group's run with the lowest seed."""
    fig, axes = _grid(len(bands), 3.4, 3.0)
    names = shown(bands, MAX_TITLE)
    for ax, (label, frame) in zip(axes, bands.items(), strict=True):
        ax.fill_between(frame["step"], frame["p15"], frame["p85"], alpha=0.25,
                        linewidth=0, label="15th-85th percentile")
        ax.plot(frame["step"], frame["p50"], label="median")
        ax.set_title(names[label], fontsize=8)
        _axis(ax, "step", None)
    axes[0].set_ylabel(f"input to {layer}, unit {unit}")
    fig.suptitle("activation input percentiles on a fixed probe batch, lowest seed "
                 "(Ioffe & Szegedy Fig. 1b, c)", fontsize=10)
    _legend(fig, axes[:1])
    return fig


def figure_drift(drift: dict):
    """Drift: relative error of the moving mean and variance against the population
    statistics of the current weights, per epoch (log scale, mean over seeds). One row of
    two panels (mean, variance) per group, so groups never hide one another; colour and
    marker are the layer, explained in the legend below."""
    every_layer = {layer for frame in drift.values() for layer in frame["layer"]}
    height = 2.3 * len(drift) + 1 + _legend_height(every_layer, 4)  # 120 BN layers' legend
    fig, axes = _subplots(len(drift), 2, figsize=(8, height), dpi=120,  # squeezed the panels
                          sharex=True, sharey="col")                   # to nothing
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
            _axis(ax, "epoch", column)
            if logarithmic[column]:
                ax.set_yscale("log")
            ax.set_title(names[label] or "all runs", fontsize=8)
            ax.tick_params(labelbottom=True)
    fig.suptitle("drift: moving vs population statistics of the current weights\n"
                 "(relative error, mean over seeds)", fontsize=10)
    _legend(fig, axes.flat, ncols=4)
    return fig


def plot_features(image, label: int, outputs: list, channels: int, out: Path,
                  class_names: list[str] | None = FASHION_MNIST) -> None:
    """`bnexp plot features`: see _figure_features. class_names: the dataset's class
    names (default Fashion-MNIST's); None for MNIST digits."""
    _save(figure_features(image, label, outputs, channels, class_names), out, "--out")


def figure_features(image, label: int, outputs: list, channels: int,
                     class_names: list[str] | None = FASHION_MNIST):
    """One test image (top left: grey, (H, W) or (H, W, 1); or colour, (H, W, 3) uint8 RGB)
    and, per layer (conv, BN, activation, pool), its first channels in inference mode. All
    channels of a row share one colour scale and its colour bar, so rows compare: BN's row
    shows the channels brought to one scale, where its conv row shows them at their own.
    Signed rows use a diverging map centred on 0."""
    cols = max(channels, 1)
    fig, axes = _subplots(len(outputs), cols + 1, dpi=110,
                          figsize=(1.25 * cols + 2.4, 1.25 * len(outputs) + 0.8))
    picture = np.asarray(image)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim == 3:
        axes[0][0].imshow(picture)  # RGB
    else:
        axes[0][0].imshow(picture, cmap="gray")
    axes[0][0].set_title("input", fontsize=8)
    for row, (name, maps) in zip(axes, outputs, strict=True):
        shown = maps[..., :cols]
        low, high = float(np.min(shown)), float(np.max(shown))
        cmap = "viridis"
        if low < 0 < high:
            cmap, bound = "RdBu_r", max(-low, high)
            low, high = -bound, bound
        for c, ax in enumerate(row[1:]):
            if c < shown.shape[-1]:
                im = ax.imshow(shown[..., c], cmap=cmap, vmin=low, vmax=high)
            else:
                ax.set_axis_off()
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_frame_on(row[0] is axes[0][0])
        row[1].set_ylabel(name, fontsize=8)
        fig.colorbar(im, ax=list(row[1:]), shrink=0.9, pad=0.02, aspect=8).ax.tick_params(
            labelsize=6)
    for c, ax in enumerate(axes[0][1:]):
        ax.set_title(f"ch {c}", fontsize=8)
    fig.suptitle(f"feature maps of a test image of {_class_name(label, class_names)}, "
                 "inference mode; one colour scale per row", fontsize=10)
    return fig


def _class_name(label: int, class_names: list[str] | None) -> str:
    """'class 9 (Ankle boot)', 'digit 9' without names, 'class 12' out of range."""
    if class_names is None:
        return f"digit {label}"
    if 0 <= label < len(class_names):
        return f"class {label} ({class_names[label]})"
    return f"class {label}"


# ---------------------------------------------------------------- shared parts


def _subplots(nrows: int, ncols: int, *, figsize, dpi: int, **shared):
    """A Figure (not pyplot's: nothing global to close) and its 2-D array of axes."""
    _import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # draws and saves without any GUI or pyplot backend
    return fig, fig.subplots(nrows, ncols, squeeze=False, **shared)


def _import_matplotlib() -> None:
    """matplotlib imported; an MPLBACKEND it refuses (a typo) is dropped first, not
    raised: bnexp draws on Agg canvases of its own and never uses a backend. A valid one
    (Jupyter's inline backend) is left alone."""
    try:
        import matplotlib  # noqa: F401
    except ValueError:  # raised half way through: its half-made modules go too
        os.environ.pop("MPLBACKEND", None)
        for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
            del sys.modules[name]
        import matplotlib  # noqa: F401


def _grid(n: int, width: float, height: float):
    """A figure of n small panels (at most 4 a row), shared axes; unused cells removed."""
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = _subplots(nrows, ncols, figsize=(width * ncols + 0.4, height * nrows + 0.9),
                          dpi=120, sharex=True, sharey=True)
    flat = list(axes.flat)
    for ax in flat[n:]:
        fig.delaxes(ax)
    for ax in flat[:n]:
        ax.tick_params(labelbottom=True, labelleft=True)
    return fig, flat[:n]


def _axis(ax, x: str, y: str | None) -> None:
    """Axis labels, integer ticks and a light grid."""
    import matplotlib.ticker

    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(x)
    if y:
        ax.set_ylabel(y)
    ax.grid(alpha=0.3)


def _legend_height(entries, ncols: int) -> float:
    """Inches to add below the panels for a legend of these entries in ncols columns: its
    rows past the third, which the figure's own margin holds."""
    return 0.2 * max(math.ceil(len(entries) / ncols) - 3, 0)


def _legend(fig, axes, ncols: int = 4) -> None:
    """One legend of the axes' labelled artists (each label once), below the panels."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", fontsize=8,
                   frameon=False, ncols=min(len(seen), ncols))


def _save(fig, out: Path, option: str) -> None:
    """Write a figure atomically (drawn first); BadInput naming the option if the file
    can't be written."""
    write_files([(out, png(fig), option)])
