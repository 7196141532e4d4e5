"""The probes' figures in `bnexp plot runs`: grad_norms.png, weight_norms.png and
predictiveness.png, from analysis.series.probe_curves (means over each group's seeds).

Gradient and weight norms span decades across layers and training, so their axes are
logarithmic; a layer keeps one colour and marker in every panel. Only kernels (conv and
dense weights) are drawn: what Yang et al. and van Laarhoven plot; every weight is in
the CSV files.
"""

from __future__ import annotations

from bnexp.views.plot_parts import (
    LINESTYLES,
    MARKERS,
    axis,
    legend,
    legend_height,
    plain_log_labels,
    shown,
    subplots,
    title,
)


def _kernels(frame):
    return frame[frame["weight"] == "kernel"]


def _layer_lines(ax, frame, x: str, column: str, layers: list) -> None:
    """One line per layer of frame's kernels: `column` against x, log scale."""
    for layer, rows in _kernels(frame).dropna(subset=[column]).groupby("layer", sort=False):
        layers += [] if layer in layers else [layer]
        i = layers.index(layer)
        ax.plot(rows[x], rows[column], color=f"C{i % 10}",
                linestyle=LINESTYLES[i % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                markersize=3.5, markerfacecolor="none",
                linewidth=1.2, label=f"layer {layer}")
    if ax.lines:
        ax.set_yscale("log")
        plain_log_labels(ax)


def _rows_of_panels(series: dict, ncols: int):
    """A figure with a row of ncols panels per group and room for a legend of layers."""
    every_layer = {layer for frame in series.values() for layer in _kernels(frame)["layer"]}
    height = 2.5 * len(series) + 1.2 + legend_height(every_layer, 4)
    return subplots(len(series), ncols, figsize=(max(4.0 * ncols, 6.4), height), sharex=True)


def figure_grad_norms(series: dict):
    """The gradient norm of each layer's kernel over training steps, one panel per group
    (the model in training mode on a fixed batch: at step 0, BN at initialization).
    Where every group recorded one step only (grad_norms at initialization), the norm
    against the layer's place in the network instead, a line per group in one panel:
    Yang et al. 2019's gradient explosion with depth."""
    if all(frame["step"].nunique() == 1 for frame in series.values()):
        return _grad_norms_by_layer(series)
    fig, axes = _rows_of_panels(series, 1)
    layers: list = []
    names = shown(series)
    for ax, (label, frame) in zip(axes[:, 0], series.items(), strict=True):
        _layer_lines(ax, frame, "step", "grad_norm", layers)
        axis(ax, "training step", "gradient norm of the kernel")
        ax.set_title(names[label] or "all runs", fontsize=8)
        ax.tick_params(labelbottom=True)
    title(fig, "gradient norms per layer on a fixed batch, training mode\n(mean over seeds)")
    legend(fig, axes.flat, ncols=4)
    return fig


def _grad_norms_by_layer(series: dict):
    fig, axes = subplots(1, 1, figsize=(7.0, 4.4 + legend_height(series, 3)))
    ax = axes[0, 0]
    names = shown(series)
    for i, (label, frame) in enumerate(series.items()):
        kernels = _kernels(frame).drop_duplicates("layer")
        ax.plot(range(1, len(kernels) + 1), kernels["grad_norm"], color=f"C{i % 10}",
                linestyle=LINESTYLES[i % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                markersize=3.5, markerfacecolor="none", label=names[label] or "all runs")
    ax.set_yscale("log")
    plain_log_labels(ax)
    axis(ax, "layer (1: the first, nearest the input)", "gradient norm of the kernel")
    step = int(next(iter(series.values()))["step"].iloc[0])
    title(fig, f"gradient norm per layer at step {step}, training mode on a fixed batch\n"
          "(mean over seeds)")
    legend(fig, [ax], ncols=3)
    return fig


def figure_weight_norms(series: dict):
    """Per group, the norm of each layer's kernel over epochs (epoch 0: at initialization)
    and, for kernels followed by a normalization, the effective learning rate lr / |w|^2."""
    fig, axes = _rows_of_panels(series, 2)
    layers: list = []
    names = shown(series)
    for row, (label, frame) in zip(axes, series.items(), strict=True):
        _layer_lines(row[0], frame, "epoch", "norm", layers)
        _layer_lines(row[1], frame, "epoch", "effective_lr", layers)
        axis(row[0], "epoch", "kernel norm |w|")
        axis(row[1], "epoch", "effective learning rate lr / |w|²")
        if not row[1].lines:
            row[1].text(0.5, 0.5, "no kernel followed\nby a normalization", ha="center",
                        va="center", transform=row[1].transAxes, fontsize=8, color="0.4")
        for ax in row:
            ax.set_title(names[label] or "all runs", fontsize=8)
            ax.tick_params(labelbottom=True)
    title(fig, "weight norms and effective learning rates (van Laarhoven 2017)\n"
          "(mean over seeds)")
    legend(fig, axes.flat, ncols=4)
    return fig


def figure_predictiveness(series: dict):
    """Santurkar et al. 2018 Fig. 4 (a, b): over training steps, the range over the step
    sizes of the loss after a step along the gradient, and of how far the gradient moved;
    one shaded band per group (narrower: a more predictable landscape)."""
    fig, axes = subplots(1, 2, figsize=(9.0, 4.0 + legend_height(series, 3)))
    names = shown(series)
    for i, (label, frame) in enumerate(series.items()):
        colour = f"C{i % 10}"
        for ax, low, high in ((axes[0, 0], "loss_low", "loss_high"),
                              (axes[0, 1], "change_low", "change_high")):
            ax.fill_between(frame["step"], frame[low], frame[high], color=colour, alpha=0.35,
                            linewidth=0.8, edgecolor=colour, label=names[label] or "all runs")
    axis(axes[0, 0], "training step", "loss after the step")
    axis(axes[0, 1], "training step", "gradient change |∇L(w − η∇L) − ∇L|")
    for ax in axes[0]:
        ax.set_yscale("log")
        plain_log_labels(ax)
    title(fig, "loss landscape and gradient predictiveness (Santurkar et al. 2018 Fig. 4)\n"
          "range over step sizes along the gradient, mean over seeds")
    legend(fig, axes[0], ncols=3)
    return fig
