"""`bnexp plot features`' figure: one test image through a run's layers up to the first
flatten, its first channels per layer, one colour scale per row. The numbers come from
bnexp.analysis.features (TensorFlow); drawing them needs none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnexp import data
from bnexp.runs import write_files
from bnexp.views.plot_parts import DPI, format_of, render, subplots

FASHION_MNIST = data.CLASS_NAMES["fashion_mnist"]


def plot_features(image, label: int, outputs: list, channels: int, out: Path,
                  class_names: list[str] | None = FASHION_MNIST, dpi: int = DPI) -> None:
    """`bnexp plot features`: see figure_features; PNG, SVG or PDF by out's suffix.
    class_names: the dataset's class names (default Fashion-MNIST's); None for MNIST."""
    fig = figure_features(image, label, outputs, channels, class_names)
    write_files([(out, render(fig, format_of(out, "--out"), dpi), "--out")])


def figure_features(image, label: int, outputs: list, channels: int,
                    class_names: list[str] | None = FASHION_MNIST):
    """One test image (top left: grey, (H, W) or (H, W, 1); or colour, (H, W, 3) uint8 RGB)
    and, per layer (conv, BN, activation, pool), its first channels in inference mode. All
    channels of a row share one colour scale and its colour bar, so rows compare: BN's row
    shows the channels brought to one scale, where its conv row shows them at their own.
    Signed rows use a diverging map centred on 0."""
    cols = max(channels, 1)
    fig, axes = subplots(len(outputs), cols + 1,
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
