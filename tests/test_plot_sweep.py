"""`bnexp plot sweep RUNS_DIR --x KEY [--by KEY] [--metric M]`: a metric at the final
epoch against a swept setting, a line per group, the mean over seeds and its interval at
each value (a log axis where the values span a decade or more). On fake run folders (no
training, no TensorFlow); the figure is checked by what it shows."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

import bnexp
from bnexp.cli import app
from tests.helpers import drawn_picture, fake_run_rows

ROOT = Path(__file__).resolve().parents[1]
SIZES = [32, 4, 256, 2, 128, 8, 64, 16]  # written out of order: drawn in numeric order


def accuracy(kind: str, size: int, seed: int) -> float:
    """Batch norm loses accuracy at small batches, group norm does not; seeds 0.01 apart."""
    return 0.9 - (0.1 * math.exp(-size / 8) if kind == "batch" else 0.02) - 0.01 * seed


def batch_sweep(root, kinds=("batch", "group"), sizes=SIZES, seeds=3, **keys):
    for kind in kinds:
        for size in sizes:
            for seed in range(seeds):
                fake_run_rows(root, [{"test_acc": 0.5}, {"test_acc": accuracy(kind, size, seed)}],
                              seed=seed, name="bs", model__bn__kind=kind,
                              data__batch_size=size, **keys)
    return root


def sweep(*args):
    result = CliRunner().invoke(app, ["plot", "sweep", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def lines(ax) -> dict:
    """{legend name: (x, mean, low, high)} of each group's error-bar line."""
    out = {}
    for container in ax.containers:
        line, _, (bars, *_) = container.lines[0], container.lines[1], container.lines[2]
        segments = np.array(bars.get_segments())
        out[container.get_label()] = (line.get_xdata(), line.get_ydata(),
                                      segments[:, 0, 1], segments[:, 1, 1])
    return out


def test_test_error_against_batch_size_per_normalization(tmp_path, drawn):
    runs = batch_sweep(tmp_path / "runs")
    out = tmp_path / "error.png"
    result = sweep(runs, "--x", "data.batch_size", "--metric", "test_error", "--out", out)
    assert result.stdout == f"{out}\n" and result.stderr == ""
    drawn_picture(out)
    (fig,) = drawn
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # 2 to 256: more than two decades
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16", "32", "64",
                                                            "128", "256"]
    assert ax.get_xlabel() == "batch size (examples per step; log scale)"
    assert ax.get_ylabel() == "test error (1 - accuracy)"
    title = fig._suptitle.get_text()
    assert "at the final epoch against batch size" in title
    assert "mean over 3 seeds; bars: 95% CI of the mean" in title
    drawn_lines = lines(ax)
    assert set(drawn_lines) == {"batch norm", "group norm"}
    half = stats.t.ppf(0.975, 2) * 0.01  # seeds 0.01 apart: std 0.01, n 3
    for name, kind in (("batch norm", "batch"), ("group norm", "group")):
        x, mean, low, high = drawn_lines[name]
        errors = [1 - np.mean([accuracy(kind, s, seed) for seed in range(3)])
                  for s in sorted(SIZES)]
        assert np.allclose(mean, errors)
        assert np.allclose(x / sorted(SIZES), x[0] / 2)  # each value, nudged aside alike
        assert np.allclose(high - mean, half / np.sqrt(3)) and np.allclose(mean - low, high - mean)
    batch = drawn_lines["batch norm"][1]
    assert batch[0] > batch[-1] + 0.05  # small batches: BN's error is higher


def test_values_within_a_decade_on_a_linear_axis_and_settings_by_their_words(tmp_path, drawn):
    runs = batch_sweep(tmp_path / "runs", kinds=("batch", "layer"), sizes=[16, 32, 64],
                       seeds=2)
    sweep(runs, "--x", "data.batch_size", "--out", tmp_path / "a.png")
    ax = drawn[-1].axes[0]
    assert ax.get_xscale() == "linear" and ax.get_ylabel() == "test accuracy"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "32", "64"]
    sweep(runs, "--x", "model.bn.kind", "--out", tmp_path / "b.png")
    ax = drawn[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["batch norm", "layer norm"]
    assert set(lines(ax)) == {"batch size 16", "batch size 32", "batch size 64"}
    assert ax.get_xlabel() == "normalization"


def test_runs_not_drawn_are_named_in_the_figure_and_on_stderr(tmp_path, drawn):
    runs = batch_sweep(tmp_path / "runs", sizes=[2, 64], seeds=2)
    for seed in (2, 3):
        fake_run_rows(runs, [{"test_acc": float("nan")}], seed=seed, status="diverged",
                      name="bs", model__bn__kind="batch", data__batch_size=2)
    result = sweep(runs, "--x", "data.batch_size", "--out", tmp_path / "f.png")
    assert result.stderr == "note: not drawn: batch norm at batch size 2: 2 runs diverged\n"
    assert "not drawn: batch norm at batch size 2: 2 runs diverged" in drawn[0]._suptitle.get_text()


def test_a_point_of_fewer_seeds_says_its_n_and_one_group_has_no_legend(tmp_path, drawn):
    """A point of one run has no bar: 'n=1' beside it says why; the title gives the rest."""
    for size, seeds in ((8, [0]), (64, [0, 1, 2]), (512, [0, 1, 2])):
        for seed in seeds:
            fake_run_rows(tmp_path / "runs", [{"test_acc": 0.8 + seed / 100}], seed=seed,
                          data__batch_size=size)
    sweep(tmp_path / "runs", "--x", "data.batch_size", "--out", tmp_path / "f.png")
    (fig,) = drawn
    notes = [(t.get_text(), t.xy[0]) for t in fig.axes[0].texts]
    assert notes == [("n=1", 8.0)]
    assert "mean over 1-3 seeds" in fig._suptitle.get_text() and not fig.legends
    bars = fig.axes[0].containers[0].lines[2][0].get_segments()
    assert [len(bar) for bar in bars] == [0, 2, 2]  # batch size 8's point: no bar


def test_by_a_key_never_pools_runs_of_another_setting(tmp_path, drawn):
    """--by kind over runs that also differ by learning rate: a line per kind and rate,
    and a note (as compare's rows)."""
    for rate in (0.1, 1.0):
        batch_sweep(tmp_path / "runs", sizes=[8, 64], seeds=2, optimizer__learning_rate=rate)
    result = sweep(tmp_path / "runs", "--x", "data.batch_size", "--by", "model.bn.kind",
                   "--out", tmp_path / "f.png")
    assert set(lines(drawn[0].axes[0])) == {f"{kind}, learning rate {rate}"
                                            for kind in ("batch norm", "group norm")
                                            for rate in ("0.1", "1")}
    assert result.stderr == ("warning: --by model.bn.kind: the runs also differ by "
                             "optimizer.learning_rate: a line for each of its values (runs of "
                             "other settings are never pooled)\n")


@pytest.mark.parametrize("band, half", [("std", 0.01), ("none", None)])
def test_band_std_or_none(tmp_path, drawn, band, half):
    runs = batch_sweep(tmp_path / "runs", kinds=("batch",), sizes=[8, 64])
    sweep(runs, "--x", "data.batch_size", "--band", band, "--out", tmp_path / "f.png")
    ax = drawn[0].axes[0]
    if half is None:
        assert ax.containers[0].has_yerr is False
        assert "bars" not in drawn[0]._suptitle.get_text()
    else:
        _, mean, low, high = lines(ax)["all runs"]
        assert np.allclose(high - mean, half) and "bars: ± 1 std" in drawn[0]._suptitle.get_text()


def test_label_and_formats_and_the_default_file(tmp_path, drawn):
    runs = batch_sweep(tmp_path / "runs", sizes=[8, 64], seeds=2)
    sweep(runs, "--x", "data.batch_size", "--label", "kind=batch=BN")
    assert (runs / "sweep_batch_size_test_acc.png").is_file()
    assert set(lines(drawn[0].axes[0])) == {"BN", "group norm"}
    sweep(runs, "--x", "data.batch_size", "--out", tmp_path / "f.svg")
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:400]
    sweep(runs, "--x", "data.batch_size", "--out", tmp_path / "f.pdf", "--dpi", "300")
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("args, message", [
    (["--x", "data.batch"], "--x data.batch: not a config key of these runs (did you mean "
                            "'data.batch_size'?)"),
    (["--x", "model.bn.placement"], "--x model.bn.placement: every run has one value of it "
                                    "(before); nothing to draw against"),
    (["--x", "data.batch_size", "--by", "data.batch_size"],
     "--by data.batch_size: it is --x; group by another key"),
    (["--x", "data.batch_size", "--metric", "test_err"], "--metric test_err: expected one of "),
    (["--x", "data.batch_size", "--out", "f.jpg"], "f.jpg: --out: bnexp draws figures as .png, "
                                                   ".svg or .pdf, not .jpg; rename it"),
    (["--x", "data.batch_size", "--label", "kind=renorm=x"], "--label kind=renorm=x: no group "
                                                             "has kind=renorm"),
    ([], "Missing option '--x'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, args, message):
    runs = batch_sweep(tmp_path / "runs", sizes=[8, 64], seeds=1)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plot", "sweep", "runs", *args])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert not list(runs.glob("sweep_*"))


def test_the_python_api_draws_the_same_figure(tmp_path):
    runs = batch_sweep(tmp_path / "runs", sizes=[2, 64], seeds=2)
    fig = bnexp.plot_sweep(runs, x="data.batch_size", metric="test_error")
    assert set(lines(fig.axes[0])) == {"batch norm", "group norm"}
    assert fig.axes[0].get_xscale() == "log"


def test_plot_sweep_and_plot_runs_load_no_tensorflow(tmp_path):
    runs, pdf = batch_sweep(tmp_path / "runs", sizes=[8, 64], seeds=2), tmp_path / "s.pdf"
    probe = f"""
import sys
from typer.testing import CliRunner
import bnexp.cli
for args in (["sweep", {str(runs)!r}, "--x", "data.batch_size", "--out", {str(pdf)!r}],
             ["runs", {str(runs)!r}, "--out", {str(tmp_path / "figs")!r}, "--format", "svg"]):
    r = CliRunner().invoke(bnexp.cli.app, ["plot", *args])
    assert r.exit_code == 0, r.output
print("heavy:", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
