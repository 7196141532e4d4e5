"""compare: statistics against scipy on fixed numbers; grouping, baselines, broken folders."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from bnexp import runs
from bnexp.analysis import compare
from bnexp.cli import app
from bnexp.errors import BadInput
from tests.helpers import drawn_picture, fake_run

ROOT = Path(__file__).resolve().parents[1]


def test_summarize_equals_numpy_and_scipy_t_interval():
    x = [0.80, 0.82, 0.85, 0.79]
    s = compare.summarize(x)
    assert s["mean"] == pytest.approx(np.mean(x)) and s["std"] == pytest.approx(np.std(x, ddof=1))
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
    assert (s["min"], s["max"], s["n_used"]) == (0.79, 0.85, 4)
    one = compare.summarize([0.5, math.nan])
    assert one["n_used"] == 1 and one["mean"] == 0.5 and math.isnan(one["ci95_low"])


def test_paired_difference_equals_scipy_ttest_rel():
    x, b = {0: 0.85, 1: 0.87, 2: 0.84, 3: 0.90}, {0: 0.80, 1: 0.83, 2: 0.81, 3: 0.82, 9: 0.5}
    d = compare.difference(x, b)
    seeds = [0, 1, 2, 3]
    ref = stats.ttest_rel([x[s] for s in seeds], [b[s] for s in seeds])
    ci = ref.confidence_interval()
    assert d["test"] == "paired" and d["n_pairs"] == 4
    assert d["p_value"] == pytest.approx(ref.pvalue)
    assert d["delta"] == pytest.approx(np.mean([x[s] - b[s] for s in seeds]))
    assert (d["delta_ci95_low"], d["delta_ci95_high"]) == (pytest.approx(ci.low),
                                                           pytest.approx(ci.high))


def test_welch_difference_where_seeds_are_not_shared():
    x, b = {0: 0.85, 1: 0.87, 2: 0.84}, {10: 0.80, 11: 0.83, 12: 0.81, 13: 0.78}
    d = compare.difference(x, b)
    ref = stats.ttest_ind(list(x.values()), list(b.values()), equal_var=False)
    ci = ref.confidence_interval()
    assert d["test"] == "welch" and d["p_value"] == pytest.approx(ref.pvalue)
    assert (d["delta_ci95_low"], d["delta_ci95_high"]) == (pytest.approx(ci.low),
                                                           pytest.approx(ci.high))


ACCURACIES = st.lists(st.sampled_from([0.5, 0.8, 0.81, 0.9]) | st.floats(0, 1), min_size=2,
                      max_size=8)


@settings(max_examples=300, deadline=None)
@given(ACCURACIES, ACCURACIES, st.booleans())
@example([0.5, 0.5], [0.0, 2.8e-148], False)  # variances whose squares underflow
def test_p_values_equal_scipy_t_tests_constant_groups_included(x, b, paired):
    """p-values come from scipy.special (scipy.stats took 1.5 s to import): the same as
    ttest_rel and Welch's ttest_ind, 0 for a constant nonzero difference, NaN for none."""
    import warnings

    n = min(len(x), len(b))
    xs = dict(enumerate(x[:n] if paired else x))
    bs = dict(enumerate(b[:n])) if paired else {100 + i: v for i, v in enumerate(b)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = (stats.ttest_rel(x[:n], b[:n]) if paired
               else stats.ttest_ind(x, b, equal_var=False)).pvalue
    got = compare.difference(xs, bs)["p_value"]
    assert (math.isnan(got) and math.isnan(ref)) or got == pytest.approx(ref, abs=1e-12), (
        got, ref)


def test_groups_differ_only_by_seed_and_count_statuses(tmp_path):
    for seed, acc in enumerate([0.80, 0.82, 0.84]):
        fake_run(tmp_path, seed, [0.5, acc], model__bn__placement="before")
    for seed, acc in enumerate([0.70, 0.74]):
        fake_run(tmp_path, seed, [0.5, acc], model__bn__placement="none")
    fake_run(tmp_path, 2, [0.1], status="diverged", model__bn__placement="none")
    fake_run(tmp_path, 3, [0.2], status="failed", model__bn__placement="none")
    found = compare.load(tmp_path)
    assert found.warnings == [] and compare.differing_keys(found) == ["model.bn.placement"]
    t = compare.table(found).set_index("model.bn.placement")
    assert t.loc["before", "n"] == 3 and t.loc["before", "mean"] == pytest.approx(0.82)
    none = t.loc["none"]
    assert (none["n"], none["completed"], none["diverged"], none["failed"]) == (4, 2, 1, 1)
    assert none["n_used"] == 2 and none["mean"] == pytest.approx(0.72)  # diverged excluded


def test_baseline_pairs_each_group_with_its_match_on_the_other_keys(tmp_path):
    for lr in (0.1, 1.0):
        for seed in range(3):
            fake_run(tmp_path, seed, [0.6 + lr / 10 + seed / 100], model__bn__placement="none",
                     optimizer__learning_rate=lr)
            fake_run(tmp_path, seed, [0.8 + seed / 50], model__bn__placement="after",
                     optimizer__learning_rate=lr)
    t = compare.table(compare.load(tmp_path), baseline="model.bn.placement=none")
    row = t[(t["model.bn.placement"] == "after") & (t["optimizer.learning_rate"] == 1.0)].iloc[0]
    diffs = [0.8 + s / 50 - (0.7 + s / 100) for s in range(3)]
    assert row["test"] == "paired" and row["n_pairs"] == 3
    assert row["delta"] == pytest.approx(np.mean(diffs))
    assert row["p_value"] == pytest.approx(stats.ttest_rel(
        [0.8 + s / 50 for s in range(3)], [0.7 + s / 100 for s in range(3)]).pvalue)
    assert set(t[t["model.bn.placement"] == "none"]["baseline"]) == {"(baseline)"}
    with pytest.raises(BadInput, match="no group has"):
        compare.table(compare.load(tmp_path), baseline="model.bn.placement=before")
    with pytest.raises(BadInput, match="grouping keys"):
        compare.table(compare.load(tmp_path), baseline="model.arch=mlp")


def test_broken_partial_and_foreign_folders_are_warned_and_skipped(tmp_path):
    fake_run(tmp_path, 0, [0.8])
    bad = tmp_path / "broken_run"
    bad.mkdir()
    (bad / "summary.json").write_text("{ not json")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.yaml").write_text("seed: 1\n")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("hello")
    (tmp_path / "other.json").write_text("{}")
    starting = tmp_path / "run_being_created"  # its first summary.json mid-rename
    starting.mkdir()
    (starting / ".summary.json.k2j4.json").write_text('{"status": "run')
    empty = tmp_path / "nested" / "deeper"
    empty.mkdir(parents=True)
    (empty / "summary.json").write_text('["a list"]')
    found = compare.load(tmp_path)
    assert len(found.table) == 1
    text = "\n".join(found.warnings)
    assert len(found.warnings) == 4
    for fragment in ("broken_run: unreadable", "partial: a partial run", "notes: not a bnexp",
                     "deeper: summary.json is not"):
        assert fragment in text


def test_a_rerun_supersedes_the_failed_attempt_and_dead_running_is_interrupted(tmp_path):
    failed = fake_run(tmp_path, 0, [0.3], status="failed")
    completed = fake_run(tmp_path, 0, [0.8], status="completed")
    dead = fake_run(tmp_path, 1, [0.5], status="running")
    summary = runs.read_summary(dead)
    summary["pid"] = 2**22 + 12345  # beyond pid_max: no such process
    runs.RunFolder(dead).write_summary(summary)
    found = compare.load(tmp_path)
    assert sorted(found.table["status"]) == ["completed", "interrupted"]
    assert any("earlier attempt" in w for w in found.warnings)
    seed0 = runs.read_summary(failed)["config_hash"]
    assert runs.find_finished(tmp_path) == {seed0: completed}  # what a sweep re-run skips


def test_by_and_metric_errors_suggest_names(tmp_path):
    fake_run(tmp_path, 0, [0.8])
    found = compare.load(tmp_path)
    with pytest.raises(BadInput, match="did you mean 'model.bn.placement'"):
        compare.table(found, by=["model.bn.placment"])
    with pytest.raises(BadInput, match="did you mean 'test_acc'"):
        compare.table(found, metric="test_accuracy")
    with pytest.raises(BadInput, match="no such folder"):
        compare.load(tmp_path / "nope")


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_cli_formats_out_file_runs_and_plot(tmp_path):
    runs_dir = tmp_path / "runs"
    for seed in range(3):
        for placement, base in (("none", 0.6), ("before", 0.8)):
            fake_run(runs_dir, seed, [base - 0.1, base + seed / 100],
                     model__bn__placement=placement)
    result = CliRunner().invoke(app, ["compare", str(runs_dir), "--format", "json",
                                      "--baseline", "model.bn.placement=none"])
    assert result.exit_code == 0, result.output
    rows = {r["model.bn.placement"]: r for r in json.loads(result.stdout)}
    assert rows["before"]["delta"] == pytest.approx(0.2) and rows["before"]["n"] == 3
    assert "fewer than 5 seeds (paired on 3 pairs)" in result.stderr  # after the table
    code, out = invoke("compare", runs_dir, "--format", "markdown")
    assert code == 0 and out.splitlines()[0].startswith("| model.bn.placement | n |")
    code, out = invoke("compare", runs_dir, "--out", tmp_path / "t.csv", "--plot",
                       tmp_path / "c.png", "--metric", "test_acc")
    assert code == 0, out
    header = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert header == ["model.bn.placement", *compare.COUNT_COLUMNS, *compare.STAT_COLUMNS]
    drawn_picture(tmp_path / "c.png")
    code, out = invoke("compare", runs_dir, "--runs", "--format", "csv")
    assert code == 0 and len(out.strip().splitlines()) == 7
    code, out = invoke("compare", runs_dir)
    assert code == 0 and "95% CI" in out
    code, out = invoke("compare", runs_dir, "--format", "xml")
    assert code == 2 and "'xml' is not one of" in out
    code, out = invoke("compare", tmp_path / "missing")
    assert code == 2 and "no such folder" in out


def test_compare_loads_no_tensorflow(tmp_path):
    """Nor the config schema (bnexp.config: 0.2 s of compare's start), with or without a
    baseline (parsed by bnexp.yamltext)."""
    for placement in ("none", "before"):
        fake_run(tmp_path / "runs", 0, [0.8], model__bn__placement=placement)
    probe = f"""
import sys
from typer.testing import CliRunner
import bnexp.cli
r = CliRunner().invoke(bnexp.cli.app, ["compare", {str(tmp_path / "runs")!r}, "--format", "csv",
                                        "--baseline", "model.bn.placement=none"])
assert r.exit_code == 0, r.output
print("heavy:", [m for m in ("tensorflow", "keras", "bnexp.config") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout


def test_compare_through_a_pipe_prints_the_full_width_table(tmp_path):
    """Without a terminal (a pipe, CI) the table is not squeezed to 80 columns: no header
    cut to 'b…', every column whole."""
    for seed in range(3):
        for placement, base in (("none", 0.6), ("before", 0.8)):
            fake_run(tmp_path, seed, [base], model__bn__placement=placement,
                     optimizer__learning_rate=0.5)
    exe = Path(sys.executable).with_name("bnexp")
    out = subprocess.run([str(exe), "compare", str(tmp_path), "--baseline",
                          "model.bn.placement=none"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) > 100
    for header in ("placement", "test_acc mean ± std", "Δ vs baseline [95% CI]", "min … max"):
        assert header in out.stdout


def test_the_out_suffix_chooses_the_format(tmp_path):
    runs_dir = tmp_path / "runs"
    for seed in range(2):
        for placement in ("none", "before"):
            fake_run(runs_dir, seed, [0.7 + seed / 100], model__bn__placement=placement)
    texts = {}
    for suffix in (".json", ".md", ".csv", ".txt"):
        code, out = invoke("compare", runs_dir, "--out", tmp_path / f"t{suffix}")
        assert code == 0, out
        texts[suffix] = (tmp_path / f"t{suffix}").read_text()
    assert sorted(r["model.bn.placement"] for r in json.loads(texts[".json"])) == ["before",
                                                                                    "none"]
    assert texts[".md"].splitlines()[0].startswith("| model.bn.placement | n |")
    assert texts[".csv"].splitlines()[0].startswith("model.bn.placement,n,")
    assert texts[".txt"] == texts[".csv"]  # an unknown suffix: csv


def test_out_dash_is_standard_output_and_dot_slash_dash_a_file(tmp_path, monkeypatch):
    """`--out -` prints the table (csv, or --format's) and writes no file named -; `./-`
    is that file; `plot runs --out -` is refused, one line, exit 2, no folder made."""
    runs_dir = tmp_path / "runs"
    for seed in range(2):
        fake_run(runs_dir, seed, [0.7 + seed / 100])
    monkeypatch.chdir(tmp_path)
    code, out = invoke("compare", runs_dir, "--out", "-")
    assert code == 0 and out.startswith("name,n,") and not Path("-").exists()
    code, out = invoke("compare", runs_dir, "--out", "-", "--format", "json")
    assert code == 0 and json.loads(out)[0]["n"] == 2
    code, out = invoke("compare", runs_dir, "--out", "./-")
    assert code == 0 and Path("-").read_text().startswith("name,n,")
    Path("-").unlink()
    code, out = invoke("plot", "runs", runs_dir, "--out", "-")
    assert code == 2 and "-: --out:" in out and not Path("-").exists()


def test_by_groups_by_the_keys_given_instead_of_the_differing_ones(tmp_path):
    """--by names the keys first; a key that also differs within its groups (the rate)
    splits them into rows of their own, shown as a column: never pooled."""
    for seed in range(2):
        for placement in ("none", "before"):
            for lr in (0.1, 0.5):
                fake_run(tmp_path, seed, [0.6 + lr / 10], model__bn__placement=placement,
                         optimizer__learning_rate=lr)
    found = compare.load(tmp_path)
    assert len(compare.table(found)) == 4  # the differing keys: placement and rate
    by = compare.table(found, by=["model.bn.placement"])
    assert list(by.columns[:2]) == ["model.bn.placement", "optimizer.learning_rate"]
    assert by[["model.bn.placement", "optimizer.learning_rate"]].values.tolist() == [
        ["before", 0.1], ["before", 0.5], ["none", 0.1], ["none", 0.5]]
    assert list(by["n"]) == [2, 2, 2, 2]
    assert by["mean"].tolist() == pytest.approx([0.61, 0.65, 0.61, 0.65])
    assert by.attrs["warnings"] == ["--by model.bn.placement: the runs also differ by "
                                    "optimizer.learning_rate: a row for each of its values "
                                    "(runs of other settings are never pooled)"]
    twice = ["model.bn.placement", "model.bn.placement"]  # --runs raised pandas' ValueError
    assert compare.table(found, by=twice).equals(by)
    assert list(compare.run_rows(found, "test_acc", "final", twice).columns).count(
        "model.bn.placement") == 1


def test_at_best_is_the_epoch_of_the_lowest_val_loss_or_the_highest_val_acc(tmp_path):
    """A loss at the epoch of the lowest val_loss, an accuracy at the epoch of the highest
    val_acc (the first of equals); never the test metric's own best over epochs."""
    from tests.helpers import fake_run_rows

    fake_run_rows(tmp_path, [{"val_loss": 0.7, "val_acc": 0.5, "test_loss": 0.9, "test_acc": 0.5},
                             {"val_loss": 0.5, "val_acc": 0.7, "test_loss": 0.4, "test_acc": 0.6},
                             {"val_loss": 0.3, "val_acc": 0.6, "test_loss": 0.6, "test_acc": 0.7},
                             {"val_loss": 0.6, "val_acc": 0.7, "test_loss": 0.8,
                              "test_acc": 0.65}])
    found = compare.load(tmp_path)
    at = {(m, a): compare.table(found, m, a)["mean"].iloc[0]
          for m in ("test_loss", "test_acc") for a in ("final", "best")}
    assert at == {("test_loss", "final"): 0.8, ("test_loss", "best"): 0.6,
                  ("test_acc", "final"): 0.65, ("test_acc", "best"): 0.6}


def test_a_baseline_pairs_each_row_with_the_baseline_of_its_setting_by_seed(tmp_path):
    """--by optimizer over runs that also differ by learning rate: a row per optimizer and
    rate (once pooled into 6 pairs, as if the rates were seeds), each adam row paired
    seed by seed with the sgd row of its own rate; Holm over the two tests."""
    acc = {}
    for opt, shift in (("sgd", 0.0), ("adam", 0.02)):
        for lr, base in (("0.1", 0.80), ("0.01", 0.70)):
            for seed in (0, 1, 2):
                acc[opt, lr, seed] = base + shift + 0.01 * seed + (0.005 * seed ** 2 if
                                                                  opt == "adam" else 0)
                fake_run(tmp_path / f"{opt}{lr}", seed, [acc[opt, lr, seed]],
                         optimizer__name=opt, optimizer__learning_rate=float(lr))
    found = compare.load(tmp_path)
    out = compare.table(found, by=["optimizer.name"], baseline="optimizer.name=sgd")
    assert out[["optimizer.name", "optimizer.learning_rate"]].values.tolist() == [
        ["adam", 0.01], ["adam", 0.1], ["sgd", 0.01], ["sgd", 0.1]]
    p_values = []
    for i, lr in enumerate(("0.01", "0.1")):
        adam = out.iloc[i]
        ref = stats.ttest_rel([acc["adam", lr, s] for s in (0, 1, 2)],
                              [acc["sgd", lr, s] for s in (0, 1, 2)])
        assert (adam["n_pairs"], adam["test"], adam["n"], adam["n_used"]) == (3, "paired", 3, 3)
        assert adam["delta"] == pytest.approx(np.mean(
            [acc["adam", lr, s] - acc["sgd", lr, s] for s in (0, 1, 2)]))
        assert adam["p_value"] == pytest.approx(ref.pvalue)
        p_values.append(ref.pvalue)
    low, high = sorted(p_values)
    holm = {low: min(1, 2 * low), high: min(1, max(2 * low, high))}
    assert out["p_holm"].iloc[:2].tolist() == pytest.approx([holm[p] for p in p_values])


def test_one_shared_seed_is_welch_and_two_are_paired():
    x = {0: 0.85, 1: 0.87, 2: 0.84}
    one = compare.difference(x, {0: 0.80, 10: 0.83, 11: 0.81})
    ref = stats.ttest_ind([0.85, 0.87, 0.84], [0.80, 0.83, 0.81], equal_var=False)
    assert one["test"] == "welch" and one["n_pairs"] == 1
    assert one["p_value"] == pytest.approx(ref.pvalue)
    two = compare.difference(x, {0: 0.80, 1: 0.83, 11: 0.81})
    ref = stats.ttest_rel([0.85, 0.87], [0.80, 0.83])
    assert two["test"] == "paired" and two["n_pairs"] == 2
    assert two["p_value"] == pytest.approx(ref.pvalue)


def test_a_value_with_a_bar_or_a_line_break_stays_in_its_cell(tmp_path):
    """`a|b` split a Markdown cell and `c\nd` made two rows (the second a group that is
    not there), in Markdown and on the terminal."""
    for value in ("a|b", "c\nd"):
        for seed in (0, 1):
            fake_run(tmp_path, seed, [0.5], data__path=value)
    for fmt in ("markdown", "table"):
        result = CliRunner().invoke(app, ["compare", str(tmp_path), "--format", fmt])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if "a\\|b" in line
                 or "a|b" in line or "c\\nd" in line]
        assert len(lines) == 2, result.output
        if fmt == "markdown":  # as many cells in every row as in the header
            rows = result.output.splitlines()
            assert len({row.count("|") - row.count("\\|") for row in rows}) == 1, rows
