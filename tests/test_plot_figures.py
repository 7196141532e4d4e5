"""The figures of bnexp.views.plots, drawn from small synthetic numbers (no TensorFlow, no
training): files that decode, legends outside the axes, one gap panel per group, feature
maps on one colour scale per row with a colour bar, the class's name in the title."""

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnexp.analysis.series import Figures
from bnexp.errors import BadInput
from bnexp.views import plots

GROUPS = ["placement=before", "placement=after", "placement=none", "placement=before_input"]


def curve(level: float, epochs: int = 8, x: str = "epoch", n: int = 3) -> pd.DataFrame:
    """A rising mean with a 95% band, as series.curves gives it."""
    at = np.arange(1, epochs + 1) if x == "epoch" else np.arange(0, epochs * 10, 10)
    mean = level * (1 - np.exp(-at / (at.max() / 3)))
    return pd.DataFrame({x: at, "mean": mean, "ci95_low": mean - 0.02,
                         "ci95_high": mean + 0.02, "n_used": n})


def synthetic_figures() -> Figures:
    """Four groups; two of them with exactly the same curves (they must both show)."""
    levels = dict(zip(GROUPS, [0.9, 0.9, 0.8, 0.85], strict=True))
    curves = {m: {g: curve(v if m != "train_loss" else 1 - v) for g, v in levels.items()}
              for m in ("train_loss", "train_acc", "test_acc")}
    batch = {g: curve(v - 0.05 * (i + 1)) for i, (g, v) in enumerate(levels.items())}
    steps = {g: curve(v, 60, "step") for g, v in levels.items()}
    rng = np.random.default_rng(0)
    bands = {}
    for g in GROUPS[:2]:
        p50 = np.cumsum(rng.normal(0, 0.05, 50))
        bands[g] = pd.DataFrame({"step": np.arange(0, 500, 10), "p15": p50 - 1,
                                 "p50": p50, "p85": p50 + 1})
    drift = {g: pd.DataFrame([{"layer": layer, "epoch": e, "mean_error": 0.1 / e / (k + 1),
                               "variance_error": 0.2 / e / (k + 1)}
                              for k, layer in enumerate(["bn1", "bn2"]) for e in range(1, 6)])
             for g in GROUPS[:2]}
    return Figures(curves, batch, steps, "dense2_sigmoid", "0", bands, drift)


def feature_outputs() -> list:
    """LeNet-like rows: conv channels at very different scales, BN bringing them to one."""
    rng = np.random.default_rng(1)
    conv = rng.normal(0, 1, (24, 24, 6)) * np.array([0.1, 0.5, 1, 2, 4, 8]) + 1
    bn = (conv - conv.mean(axis=(0, 1))) / conv.std(axis=(0, 1))
    relu = np.maximum(bn, 0)
    pool = relu.reshape(12, 2, 12, 2, 6).max(axis=(1, 3))
    return [("conv1", conv), ("conv1_bn", bn), ("conv1_relu", relu), ("pool1", pool)]


def outside(fig) -> bool:
    """Whether every figure legend lies clear of every axes' area (a colour bar aside)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [legend.get_window_extent(renderer) for legend in fig.legends]
    inside = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return bool(boxes) and not inside and not any(
        box.overlaps(ax.get_window_extent(renderer)) for box in boxes for ax in fig.axes)


def test_plot_all_writes_pictures_that_decode(tmp_path):
    written = plots.plot_all(synthetic_figures(), tmp_path)
    names = {p.name for p in written}
    assert names == {"curves.png", "gap.png", "steps.png", "steps_by_group.csv", "activations.png",
                     "drift.png"}
    for path in written:
        if path.suffix == ".png":
            picture = mpimg.imread(path)
            height, width = picture.shape[:2]
            assert height > 250 and width > 400, path.name
            assert picture[..., :3].std() > 0.05, path.name  # not a blank canvas


def test_curves_are_one_compact_row_with_the_legend_below():
    fig = plots.figure_curves(synthetic_figures().curves, "epoch", "t")
    assert len(fig.axes) == 3
    assert len({round(ax.get_position().y0, 3) for ax in fig.axes}) == 1  # one row
    assert outside(fig)
    legend_top = fig.legends[0].get_window_extent().y1
    assert all(legend_top <= ax.get_window_extent().y0 for ax in fig.axes)  # below them


def test_coinciding_curves_stay_distinguishable():
    fig = plots.figure_curves(synthetic_figures().curves, "epoch", "t")
    lines = fig.axes[0].get_lines()
    assert len(lines) == len(GROUPS)
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == len(GROUPS)
    same = [line for line in lines if line.get_label() in ("placement=before", "placement=after")]
    assert np.array_equal(same[0].get_ydata(), same[1].get_ydata())
    assert same[0].get_linestyle() != same[1].get_linestyle()


def test_gap_has_one_panel_per_group_with_the_gap_shaded():
    data = synthetic_figures()
    fig = plots.figure_gap(data.curves["test_acc"], data.batch_stats)
    assert len(fig.axes) == len(GROUPS)
    for ax, group in zip(fig.axes, GROUPS, strict=True):
        assert ax.get_title().startswith(group)
        assert len(ax.get_lines()) == 2  # moving and batch statistics
        assert len(ax.collections) == 1  # the shaded gap between them
    assert outside(fig)


def test_gap_of_a_group_without_moving_curve_still_draws():
    data = synthetic_figures()
    fig = plots.figure_gap({}, {GROUPS[0]: data.batch_stats[GROUPS[0]]})
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 1


@pytest.mark.parametrize("build", [
    lambda d: plots.figure_curves({"test_acc": d.steps}, "step", "t", size=(6.4, 4.2)),
    lambda d: plots.figure_bands(d.layer, d.unit, d.bands),
    lambda d: plots.figure_drift(d.drift),
])
def test_other_figures_keep_their_legend_off_the_data(build):
    assert outside(build(synthetic_figures()))


def test_compare_plot_keeps_its_legend_whole(tmp_path):
    out = tmp_path / "c.png"
    plots.plot_curves(synthetic_figures().curves["test_acc"], "test_acc", out)
    fig = plots.figure_curves({"test_acc": synthetic_figures().curves["test_acc"]}, "epoch",
                               "t", size=(6.4, 4.2))
    assert outside(fig)
    box = fig.legends[0].get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # not cut off at an edge
    assert mpimg.imread(out).shape[1] > 400


def feature_rows(fig) -> dict:
    """{row: [images of its channel panels]}, the input image's column left out."""
    rows: dict = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if ax.images and spec is not None and spec.colspan.start > 0:
            rows.setdefault(spec.rowspan.start, []).extend(ax.images)
    return rows


def test_feature_rows_share_one_colour_scale_with_a_colour_bar():
    outputs = feature_outputs()
    fig = plots.figure_features(np.zeros((28, 28)), 9, outputs, 4, plots.FASHION_MNIST)
    rows = feature_rows(fig)
    assert sorted(rows) == list(range(len(outputs)))
    for row, images in rows.items():
        assert len(images) == 4
        assert len({im.get_clim() for im in images}) == 1, row
        assert sum(im.colorbar is not None for im in images) == 1, row
    conv, bn = (rows[i][0].get_clim() for i in (0, 1))
    assert conv != bn  # BN's row is on its own scale, so its effect shows
    assert "Ankle boot" in fig._suptitle.get_text()


def test_feature_titles_name_digits_without_class_names(tmp_path):
    fig = plots.figure_features(np.zeros((28, 28)), 3, feature_outputs(), 2, None)
    assert "digit 3" in fig._suptitle.get_text()
    out = tmp_path / "f.png"
    plots.plot_features(np.zeros((28, 28)), 0, feature_outputs(), 2, out)  # positional
    assert mpimg.imread(out).shape[0] > 200


def test_feature_rows_with_fewer_channels_than_asked():
    outputs = [("conv1", np.ones((8, 8, 2))), ("conv2", np.arange(64.0).reshape(4, 4, 4))]
    rows = feature_rows(plots.figure_features(np.zeros((8, 8)), 1, outputs, 3))
    assert [len(rows[0]), len(rows[1])] == [2, 3]


def test_unwritable_path_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="--plot"):
        plots.plot_curves(synthetic_figures().curves["test_acc"], "test_acc",
                          tmp_path / "missing" / "c.png")


def test_drift_has_a_row_per_group_so_equal_groups_both_show():
    data = synthetic_figures()  # both groups have the same drift numbers
    fig = plots.figure_drift(data.drift)
    assert len(fig.axes) == 2 * len(data.drift)
    assert [ax.get_title() for ax in fig.axes[::2]] == list(data.drift)
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)  # one line per layer
    assert outside(fig)


def many_groups(n: int, label=lambda i: f"learning_rate={0.001 * (i + 1):.3f}") -> dict:
    return {label(i): curve(0.5 + 0.01 * i, epochs=5, n=2) for i in range(n)}


def test_forty_groups_draw_with_the_legend_whole_and_off_the_data():
    """40 lines in compare --plot's figure: the legend's 20 rows collapsed the axes to
    nothing (a matplotlib warning); the figure now grows with its legend."""
    fig = plots.figure_curves_of(many_groups(plots.MAX_GROUPS), "test_acc")
    assert outside(fig)
    assert all(ax.get_window_extent().height > 150 for ax in fig.axes)


def test_a_drift_of_120_bn_layers_keeps_its_panels_and_legend_whole():
    """A deep model's 120 BN layers: the legend's 30 rows collapsed the panels to nothing
    (matplotlib's warning); the figure now grows with its legend."""
    frame = pd.DataFrame([{"layer": f"bn{k}", "epoch": e, "mean_error": 0.1 * (k + 1) * e,
                           "variance_error": 0.2 * e} for k in range(120) for e in (1, 2, 3)])
    fig = plots.figure_drift({"a": frame, "b": frame})
    assert outside(fig)
    assert all(ax.get_window_extent().height > 150 for ax in fig.axes)


def test_more_groups_than_one_figure_shows_are_refused_before_drawing():
    """150 groups drew for a minute into collapsed panels; now one line naming where."""
    too_many = many_groups(plots.MAX_GROUPS + 1)
    with pytest.raises(BadInput, match=r"^runs: --plot: 41 groups of runs, more than the 40"):
        plots.figure_curves_of(too_many, "test_acc", "runs: --plot")
    figures = Figures({"test_acc": {}}, too_many, {}, None, "0", {}, {})
    with pytest.raises(BadInput, match=r"^runs: 41 groups .* --by KEY"):
        plots.render_all(figures, "runs")


@given(st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=30),
       st.sampled_from([plots.MAX_LABEL, plots.MAX_TITLE]))
def test_shown_labels_are_short_and_still_one_per_group(labels, limit):
    """A 120 KB config value made a legend that wide; cut, two groups still read apart."""
    names = plots.shown(labels, limit)
    assert list(names) == list(dict.fromkeys(labels))
    assert len(set(names.values())) == len(names)
    for label, name in names.items():
        assert name == label if len(label) <= limit else len(name) <= limit + 4


def test_a_huge_group_label_keeps_the_figures_their_size(tmp_path):
    value = "/".join(["a" * 250] * 15)
    groups = {f"path={value}{i}": curve(0.8 + 0.01 * i) for i in range(3)}
    fig = plots.figure_curves({"test_acc": groups}, "epoch", "t")
    assert fig.get_size_inches()[0] < 10
    titles = [ax.get_title() for ax in plots.figure_gap(groups, groups).axes]
    assert all(len(t.split("\n")[0]) <= plots.MAX_TITLE for t in titles)
    assert titles[0].split("\n")[0].endswith("a0") and titles[2].split("\n")[0].endswith("a2")


def test_a_loss_panel_spanning_decades_is_logarithmic_and_accuracy_never():
    """A run whose loss reached 7,000 in its first epoch flattened every other curve to
    a line at 0: a loss panel over more than two decades is drawn on a log axis."""
    def frame(means):
        n = len(means)
        return pd.DataFrame({"epoch": range(1, n + 1), "mean": means, "ci95_low": means,
                             "ci95_high": means, "n_used": [3] * n})

    fig = plots.figure_curves(
        {"train_loss": {"a": frame([7000.0, 2.3]), "b": frame([0.9, 0.3])},
         "test_acc": {"a": frame([0.1, 0.1]), "b": frame([0.8, 0.9])}}, "epoch", "curves")
    loss, acc = fig.axes[:2]
    assert (loss.get_yscale(), acc.get_yscale()) == ("log", "linear")
    calm = plots.figure_curves({"train_loss": {"b": frame([0.9, 0.3])}}, "epoch", "curves")
    assert calm.axes[0].get_yscale() == "linear"
