"""Figures as PNG files: learning curves, the train/inference gap, steps, activation
percentile bands, drift, feature maps. They draw numbers computed elsewhere
(bnexp.analysis.series, bnexp.analysis.features) and write each file atomically.
"""

from __future__ import annotations

from pathlib import Path

from bnexp.errors import BadInput
from bnexp.runs import replace_atomically, write_text_atomic


def plot_curves(curves: dict, metric: str, out: Path) -> None:
    """Learning curves: per group the mean over seeds and a shaded 95% band, one colour each."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    _bands(ax, curves, "epoch", metric)
    ax.set_title(f"{metric}: mean over seeds, shaded 95% confidence band")
    _save(fig, out, "--plot")


# ---------------------------------------------------------------- bnexp plot

GROUP_NOTE = "mean over seeds, shaded 95% band"


def plot_all(figures, out_dir: Path) -> list[Path]:
    """The standard figures of a run or a folder of runs (an analysis.series.Figures), as
    far as their files allow: curves.png (learning curves), gap.png (train/inference
    gap), steps.png (test accuracy over steps, with its numbers in steps.csv),
    activations.png (Fig. 1 b, c percentile bands), drift.png. Returns the files written."""
    plt = _pyplot()
    written = []

    def save(fig, name):
        _save(fig, out_dir / name, "--out")
        written.append(out_dir / name)

    curves, unit = figures.curves, figures.unit
    if any(curves.values()):
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=110)
        for ax, (metric, series) in zip(axes, curves.items(), strict=True):
            _bands(ax, series, "epoch", metric, legend=ax is axes[-1])
        fig.suptitle(f"learning curves: {GROUP_NOTE}")
        save(fig, "curves.png")
    batch = figures.batch_stats
    if batch:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        _gap(ax, curves["test_acc"], batch)
        save(fig, "gap.png")
    steps = figures.steps
    if steps:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        _bands(ax, steps, "step", "test_acc")
        ax.set_title(f"test accuracy over steps (Ioffe & Szegedy Fig. 1a)\n{GROUP_NOTE}")
        save(fig, "steps.png")
        text = figures.steps_table.to_csv(index=False, float_format="%.4f")
        write_text_atomic(out_dir / "steps.csv", text)
        written.append(out_dir / "steps.csv")
    layer, bands = figures.layer, figures.bands
    if bands:
        fig = _percentile_bands(plt, layer, unit, bands)
        save(fig, "activations.png")
    drift = figures.drift
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

    fig.tight_layout()
    try:
        replace_atomically(out, lambda f: fig.savefig(f, format="png"))
    except OSError as e:
        raise BadInput(f"{out}: {option}: cannot write ({e.strerror})") from None
    finally:
        plt.close(fig)
