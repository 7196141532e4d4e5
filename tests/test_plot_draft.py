"""Figures a draft can take (issue 32): PNG, SVG or PDF by the output's suffix and --dpi;
axis titles in words; legends that name what differs (`BN before`, `no BN`, an arm's
label) and --label to rename; markers where a curve has few points; --band ci|std|none;
no panel left small in a wide canvas; nothing left out without a word. On fake run
folders (no training, no TensorFlow); each figure is checked by what it shows."""

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from bnexp.cli import app
from bnexp.errors import BadInput
from bnexp.views import plot_words, plots
from tests.helpers import drawn_picture, fake_run_rows

PLACEMENTS = {"none": 0.70, "before": 0.76, "after": 0.78}


def placement_runs(root, epochs=2, seeds=3, **keys):
    """3 placements x `seeds` seeds; test accuracy rising to the placement's level, each
    seed 0.01 apart, so that every band has a width."""
    for placement, level in PLACEMENTS.items():
        for seed in range(seeds):
            rows = [{"train_loss": 1.5 - level * e / epochs, "train_acc": level * e / epochs,
                     "test_acc": level * e / epochs - 0.01 * seed} for e in range(1, epochs + 1)]
            fake_run_rows(root, rows, seed=seed, name="placement",
                          model__bn__placement=placement, **keys)
    return root


def plot(*args):
    result = CliRunner().invoke(app, ["plot", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def by_file(result, figures) -> dict:
    """{file name: its figure} of a plot runs result (its stdout: the files in order)."""
    names = [line.rsplit("/", 1)[-1] for line in result.stdout.splitlines()]
    return dict(zip([n for n in names if not n.endswith(".csv")], figures, strict=True))


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_axis_titles_are_words_and_legends_name_what_differs(tmp_path, drawn):
    result = plot("runs", placement_runs(tmp_path / "runs"), "--out", tmp_path / "figs")
    curves = by_file(result, drawn)["curves.png"]
    assert [ax.get_xlabel() for ax in curves.axes] == ["epoch"] * 3
    assert [ax.get_ylabel() for ax in curves.axes] == ["training loss", "training accuracy",
                                                       "test accuracy"]
    assert sorted(legend_texts(curves)) == ["BN after", "BN before", "no BN"]  # no n=, no =
    assert "mean over 3 seeds; shaded: 95% CI of the mean" in curves._suptitle.get_text()
    drawn_picture(tmp_path / "figs" / "curves.png")


def test_label_renames_a_group_and_a_label_that_names_nothing_is_refused(tmp_path, drawn):
    runs = placement_runs(tmp_path / "runs")
    result = plot("runs", runs, "--out", tmp_path / "figs", "--label",
                  "model.bn.placement=none=no BN (baseline)", "--label", "placement=after=BN last")
    assert sorted(legend_texts(by_file(result, drawn)["curves.png"])) == [
        "BN before", "BN last", "no BN (baseline)"]
    for label, needle in [("model.bn.placement=nope=x", "no group has model.bn.placement=nope "
                           "(values: "),
                          ("optimizer.name=sgd=x", "the groups differ by model.bn.placement, "
                           "not optimizer.name"),
                          ("placement=none", "expected KEY=VALUE=TEXT, e.g. ")]:
        result = CliRunner().invoke(app, ["plot", "runs", str(runs), "--label", label])
        assert result.exit_code == 2 and result.output.count("\n") == 1
        assert result.output.startswith(f"error: --label {label}: {needle}")
    assert all(value in result.output for value in PLACEMENTS) or "values" not in result.output


def test_arm_labels_name_their_groups(tmp_path, drawn):
    """sweep.cells' arms (summary.json cell.label) are their groups' names as they are."""
    for label, name, rate in (("adam 1e-3", "adam", 0.001), ("sgd + momentum", "sgd", 0.1)):
        for seed in range(2):
            fake_run_rows(tmp_path / "runs", [{"test_acc": 0.7 + seed / 100}], seed=seed,
                          summary={"cell": {"label": label}}, optimizer__name=name,
                          optimizer__learning_rate=rate)
    result = plot("runs", tmp_path / "runs", "--out", tmp_path / "figs")
    names = legend_texts(by_file(result, drawn)["curves.png"])
    assert sorted(names) == ["adam 1e-3", "sgd + momentum"]


def test_legend_names_in_words_and_never_two_alike():
    groups = {"a": {"data.path": "/data/fashion-mnist/", "optimizer.learning_rate": 0.1,
                    "model.use_bias": "false", "model.activation": "relu"},
              "b": {"data.path": "/data/mnist", "optimizer.learning_rate": 0.01,
                    "model.use_bias": "true", "model.activation": "relu"}}
    assert plot_words.legend_names(groups) == {
        "a": "fashion-mnist, learning rate 0.1, no bias",  # relu: the same in both, left out
        "b": "mnist, learning rate 0.01, with bias"}
    renamed = plot_words.legend_names(groups, ["learning_rate=1e-1=fast"])
    assert renamed["a"] == "fashion-mnist, fast, no bias"
    alike = {"x=1": {"x": "a/b"}, "x=2": {"x": "c/b"}}  # both read "b": the labels instead
    assert plot_words.legend_names(alike) == {"x=1": "x=1", "x=2": "x=2"}
    with pytest.raises(BadInput, match="no group has x=3"):
        plot_words.legend_names({"x=1": {"x": 1}, "x=2": {"x": 2}}, ["x=3=three"])


def test_few_points_have_markers_and_many_none(tmp_path):
    short = plots.figure_curves({"test_acc": {"g": _frame(2)}}, "epoch", "t")
    long = plots.figure_curves({"test_acc": {"g": _frame(200)}}, "epoch", "t")
    (line,), (line_long,) = short.axes[0].get_lines(), long.axes[0].get_lines()
    assert line.get_marker() not in (None, "None", "") and line.get_markersize() >= 6
    assert line_long.get_marker() in (None, "None", "")


def _frame(epochs: int, n: int = 3):
    import pandas as pd

    mean = np.linspace(0.5, 0.8, epochs)
    return pd.DataFrame({"epoch": np.arange(1, epochs + 1), "mean": mean, "std": 0.02,
                         "ci95_low": mean - 0.05, "ci95_high": mean + 0.05, "n_used": n})


@pytest.mark.parametrize("band, half, note", [("ci", 0.05, "shaded: 95% CI of the mean"),
                                              ("std", 0.02, "shaded: ± 1 std over seeds"),
                                              ("none", None, "mean over 3 seeds")])
def test_band_is_the_chosen_interval_or_none(band, half, note):
    frame = _frame(5)
    fig = plots.figure_curves({"test_acc": {"g": frame}}, "epoch", "t", band=band)
    bands = fig.axes[0].collections
    assert fig._suptitle.get_text().endswith(note)
    if half is None:
        assert not bands
        return
    (poly,) = bands
    ys = poly.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.max(), frame["mean"].max() + half)
    assert np.isclose(ys.min(), frame["mean"].min() - half)


def test_band_std_through_the_cli_is_the_seeds_std(tmp_path, drawn):
    """--band std: mean ± the sample std over seeds (0.01 apart: std 0.01)."""
    result = plot("runs", placement_runs(tmp_path / "runs"), "--out", tmp_path / "f",
                  "--band", "std")
    ax = by_file(result, drawn)["curves.png"].axes[2]
    edges = [band.get_paths()[0].vertices[:, 1] for band in ax.collections]
    # each placement's last epoch: its level less 0.01 (the mean of seeds 0, 1, 2)
    assert np.allclose(sorted(ys.max() for ys in edges),
                       [level - 0.01 + 0.01 for level in sorted(PLACEMENTS.values())])
    assert np.allclose(sorted(ys.min() for ys in edges),
                       [level / 2 - 0.01 - 0.01 for level in sorted(PLACEMENTS.values())])


def panel_share(fig) -> float:
    """The part of the saved canvas's width (its tight bounding box) the panels take."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.get_tightbbox(renderer).width * fig.dpi
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    return (max(b.x1 for b in boxes) - min(b.x0 for b in boxes)) / canvas


def test_one_group_gap_is_one_panel_that_fills_its_canvas(tmp_path, drawn):
    """gap.png of one group was one small panel in a canvas as wide as its title."""
    for seed in range(3):
        fake_run_rows(tmp_path / "runs", [{"test_acc": 0.6 + e / 20, "test_acc_batchstats":
                                           0.55 + e / 20} for e in range(5)], seed=seed)
    result = plot("runs", tmp_path / "runs", "--out", tmp_path / "figs")
    gap = by_file(result, drawn)["gap.png"]
    assert len(gap.axes) == 1 and panel_share(gap) > 0.7
    assert gap.axes[0].get_ylabel() == "test accuracy"
    height, width, _ = drawn_picture(tmp_path / "figs" / "gap.png").shape
    assert width < 1.5 * height  # not a wide strip


@pytest.mark.parametrize("build", [
    lambda g: plots.figure_curves({"test_acc": g}, "epoch", "t"),
    lambda g: plots.figure_curves({m: g for m in ("train_loss", "train_acc", "test_acc")},
                                  "epoch", "t"),
    lambda g: plots.figure_gap(g, g),
])
@pytest.mark.parametrize("groups", [1, 2, 5])
def test_no_panel_is_left_small_in_a_wide_canvas(build, groups):
    fig = build({f"group {i}": _frame(6) for i in range(groups)})
    assert panel_share(fig) > 0.75


def test_figures_are_png_svg_or_pdf_by_suffix_or_format(tmp_path):
    runs = placement_runs(tmp_path / "runs")
    for fmt, magic in (("svg", b"<svg"), ("pdf", b"%PDF")):
        result = plot("runs", runs, "--out", tmp_path / fmt, "--format", fmt)
        assert result.stdout.splitlines() == [str(tmp_path / fmt / f"curves.{fmt}")]
        text = (tmp_path / fmt / f"curves.{fmt}").read_bytes()
        assert magic in text[:400]
        if fmt == "svg":
            assert b"BN before" in text  # each text's outline comes after it as a comment
        else:  # TrueType fonts embedded, not Type 3 (which paper checks refuse)
            assert b"/FontFile2" in text and b"Type3" not in text
    plot("runs", runs, "--out", tmp_path / "again", "--format", "svg")
    assert (tmp_path / "again" / "curves.svg").read_bytes() == (
        tmp_path / "svg" / "curves.svg").read_bytes()  # the same figure, the same bytes
    result = CliRunner().invoke(app, ["compare", str(runs), "--plot", str(tmp_path / "c.pdf")])
    assert result.exit_code == 0 and (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_dpi_sets_a_pngs_pixels(tmp_path):
    runs = placement_runs(tmp_path / "runs")
    plot("runs", runs, "--out", tmp_path / "default")
    plot("runs", runs, "--out", tmp_path / "sharp", "--dpi", 300)
    default = drawn_picture(tmp_path / "default" / "curves.png").shape
    sharp = drawn_picture(tmp_path / "sharp" / "curves.png").shape
    assert abs(sharp[1] / default[1] - 300 / plots.DPI) < 0.05
    for name, dpi in (("plain.png", []), ("fine.png", ["--dpi", "300"])):  # compare --plot
        result = CliRunner().invoke(app, ["compare", str(runs), "--plot", str(tmp_path / name),
                                          *dpi])
        assert result.exit_code == 0, result.output
    plain, fine = (drawn_picture(tmp_path / n).shape for n in ("plain.png", "fine.png"))
    assert abs(fine[1] / plain[1] - 300 / plots.DPI) < 0.05


@pytest.mark.parametrize("args, message", [
    (["--dpi", "5"], "Invalid value for '--dpi'"),
    (["--band", "iqr"], "Invalid value for '--band'"),
    (["--format", "jpg"], "Invalid value for '--format'"),
])
def test_bad_figure_options_are_one_line(tmp_path, args, message):
    runs = placement_runs(tmp_path / "runs")
    result = CliRunner().invoke(app, ["plot", "runs", str(runs), *args])
    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1


def test_what_plot_runs_leaves_out_it_names_with_the_reason(tmp_path):
    """Runs without diagnostics: curves only, and a line per figure not drawn on stderr."""
    result = plot("runs", placement_runs(tmp_path / "runs"), "--out", tmp_path / "figs")
    assert result.stdout.splitlines() == [str(tmp_path / "figs" / "curves.png")]
    notes = result.stderr.splitlines()
    assert notes == [
        "note: gap.png not drawn: no run recorded test_acc_batchstats "
        "(diagnostics.batch_stats_eval: true)",
        "note: steps.png not drawn: no run wrote steps.csv (diagnostics.step_metrics: true)",
        "note: activations.png not drawn: no run wrote activations.csv "
        "(diagnostics.activations: true)",
        "note: drift.png not drawn: no run wrote drift.csv (diagnostics.drift: N, a BN model)"]


def test_layer_wide_percentiles_are_drawn_and_groups_without_them_named(tmp_path, drawn):
    """Only unit "all" recorded (diagnostics.activation_units: 0): activations.png was
    skipped without a word; now drawn, saying so, and a group without it is named."""
    rows = [{"step": s, "layer": "dense2_sigmoid", "unit": "all", "p15": -1 - s / 100,
             "p50": 0.0, "p85": 1 + s / 100} for s in range(0, 100, 10)]
    for placement in ("before", "none"):
        fake_run_rows(tmp_path / "runs", [{"test_acc": 0.7}], model__bn__placement=placement,
                      activations=rows if placement == "before" else None)
    result = plot("runs", tmp_path / "runs", "--out", tmp_path / "figs")
    bands = by_file(result, drawn)["activations.png"]
    assert [ax.get_title() for ax in bands.axes] == ["BN before"]
    assert bands.axes[0].get_ylabel() == "input to dense2_sigmoid\n(all units together)"
    assert bands.axes[0].get_xlabel() == "training step"
    assert ("note: activations.png drawn without no BN: their runs have no rows of this "
            "layer and unit in activations.csv") in result.stderr.splitlines()


def test_plot_runs_by_a_key_never_pools_runs_of_other_settings(tmp_path, drawn):
    """--by placement over runs that also differ by learning rate: a line per placement
    and rate (as compare's rows), never the rates pooled as seeds, and a note."""
    for rate in (0.1, 1.0):
        placement_runs(tmp_path / "runs", seeds=2, optimizer__learning_rate=rate)
    result = plot("runs", tmp_path / "runs", "--out", tmp_path / "figs", "--by",
                  "model.bn.placement")
    names = legend_texts(by_file(result, drawn)["curves.png"])
    assert sorted(names) == sorted(f"{p}, learning rate {r}" for r in ("0.1", "1")
                                   for p in ("no BN", "BN before", "BN after"))
    assert "runs also differ by optimizer.learning_rate" in result.stderr


def test_a_group_of_another_size_says_its_n():
    """Most groups' number of seeds is in the title; a group of another says its own."""
    groups = {"a": _frame(4, n=3), "b": _frame(4, n=2), "c": _frame(4, n=3)}
    fig = plots.figure_curves({"test_acc": groups}, "epoch", "t")
    assert legend_texts(fig) == ["a", "b (n=2)", "c"]
    assert "mean over 2-3 seeds" in fig._suptitle.get_text()


def test_t_band_is_what_compare_reports(tmp_path, drawn):
    """The shaded 95% band at the last epoch is compare's CI of the final test accuracy."""
    result = plot("runs", placement_runs(tmp_path / "runs"), "--out", tmp_path / "f")
    ax = by_file(result, drawn)["curves.png"].axes[2]
    tops = sorted(band.get_paths()[0].vertices[:, 1].max() for band in ax.collections)
    for top, level in zip(tops, sorted(PLACEMENTS.values()), strict=True):
        values = [level, level - 0.01, level - 0.02]  # its seeds' final test accuracy
        half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
        assert np.isclose(top, np.mean(values) + half)


def test_a_group_without_bn_is_not_named_by_bn_settings_it_does_not_have():
    from bnexp.views.plot_words import legend_names

    names = legend_names({
        "a": {"model.bn.impl": "keras", "model.bn.placement": "before"},
        "b": {"model.bn.impl": "scratch", "model.bn.placement": "before"},
        "c": {"model.bn.impl": "keras", "model.bn.placement": "none"}})
    assert names == {"a": "Keras BN, BN before", "b": "bnexp's BN, BN before", "c": "no BN"}
