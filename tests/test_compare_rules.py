"""compare, rule by rule: a run's row, the statistics (checked against scipy, computed here
independently), group order, counts, missing keys, baselines and the --runs table."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from bnexp.analysis import compare, series
from bnexp.analysis import stats as compare_stats
from bnexp.cli import app
from bnexp.config import flatten, format_value
from bnexp.errors import BadInput
from bnexp.runs.record import EPOCH_COLUMNS, RunRecord
from bnexp.views import tables
from tests.helpers import fake_run

NAN = math.nan
METRICS = EPOCH_COLUMNS[1:]
STATS_KEYS = ["test", "n_pairs", "n_baseline", "delta", "delta_ci95_low", "delta_ci95_high",
              "p_value", "effect", "effect_size", "effect_ci95_low", "effect_ci95_high"]
T_KEYS = ["delta", "delta_ci95_low", "delta_ci95_high", "p_value"]  # the t-test's numbers


def same(a, b) -> bool:
    """Equality where NaN equals NaN (dicts, lists, scalars)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def close(a, b) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------- a run's row


def row_of(record: RunRecord) -> dict:
    """The run's row of compare's table: its own columns, then its config's ("cfg:")."""
    columns = compare._own_columns([record])
    config = compare.config_columns_of([record.config])
    columns.update({f"cfg:{k}": v for k, v in config.items() if k != "seed"})
    return {k: v[0] for k, v in columns.items()}


def test_row_of_a_record_exactly(tmp_path):
    config = {"name": "exp", "seed": 7, "model": {"bn": {"placement": "after"}},
              "data": {"sizes": [300, 100]}, "flag": True, "extra": None}
    summary = {"status": "completed", "seed": 3, "config_hash": "h1", "epochs_done": 5,
               "started": "2026-01-01T00:00:05",
               "final": {"test_acc": 0.9, "train_loss": 1, "val_acc": "x", "val_loss": None},
               "best": {"test_acc": 0.95, "seconds": 2.5}}
    record = RunRecord(tmp_path / "exp_s7_1", summary, "completed", config)
    expected = {
        "run_id": "exp_s7_1", "path": str(tmp_path / "exp_s7_1"), "status": "completed",
        "seed": 7, "config_hash": "h1", "epochs_done": 5, "started": "2026-01-01T00:00:05",
        "cfg:name": "exp", "cfg:model.bn.placement": "after", "cfg:data.sizes": "[300, 100]",
        "cfg:flag": "true", "cfg:extra": "null",
    }
    expected.update({f"final_{m}": NAN for m in METRICS})
    expected.update({f"best_{m}": NAN for m in ["epoch", *METRICS]}, best_selected_by=NAN)
    expected.update(final_test_acc=0.9, final_train_loss=1.0)
    row = row_of(record)  # a best of schema 1 (each metric's own best) is not read
    assert same(row, expected), row
    assert type(row["final_train_loss"]) is float
    summary.update(schema=2, best={"selected_by": "val_acc", "epoch": 3, "test_acc": 0.95,
                                   "seconds": 2.5})
    row = row_of(RunRecord(tmp_path / "exp_s7_1", summary, "completed", config))
    expected.update(best_test_acc=0.95, best_seconds=2.5, best_epoch=3.0,
                    best_selected_by="val_acc")
    assert same(row, expected), row


def test_row_falls_back_to_the_summary_then_to_defaults(tmp_path):
    summary = {"status": "failed", "seed": 3}
    row = row_of(RunRecord(tmp_path / "r", summary, "failed", {"name": "exp"}))
    got = {k: row[k] for k in ("seed", "config_hash", "epochs_done", "started", "status")}
    assert got == {"seed": 3, "config_hash": None, "epochs_done": 0, "started": "",
                   "status": "failed"}
    assert all(math.isnan(row[f"{at}_{m}"]) for at in ("final", "best") for m in METRICS)
    assert math.isnan(row["best_epoch"]) and math.isnan(row["best_selected_by"])
    row = row_of(RunRecord(tmp_path / "r", {"status": "failed", "best": None},
                                 "interrupted", {"name": "exp"}))
    assert (row["seed"], row["epochs_done"], row["status"]) == (None, 0, "interrupted")
    row = row_of(RunRecord(tmp_path / "r", {"status": "x", "seed": 3, "epochs_done": 2},
                                 "x", {"seed": 0}))
    assert (row["seed"], row["epochs_done"]) == (0, 2)  # the config's seed 0 counts


LEAVES = st.one_of(  # no two of a type that == takes for equal (True == 1 == 1.0)
    st.sampled_from(["a", "b", ""]), st.integers(2, 9), st.integers(0, 9).map(lambda i: i + 0.25),
    st.booleans(), st.none(), st.lists(st.integers(2, 4), max_size=2))
KEYS = st.sampled_from(["a", "b", "c"])
CONFIGS = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=3),
                       max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(KEYS, CONFIGS, max_size=3), min_size=1, max_size=6),
       st.data())
def test_config_columns_are_each_configs_flattened_keys(configs, data):
    """Column by column (equal sections flattened once) as config by config: every key
    of every config, format_value's text for lists, null and booleans, NaN where absent."""
    configs += data.draw(st.lists(st.sampled_from(configs), max_size=4))  # equal sections
    columns = compare.config_columns_of(configs)
    flat = [flatten(c) for c in configs]
    assert set(columns) == {k for f in flat for k in f}
    for key, column in columns.items():
        expected = [format_value(f[key]) if key in f else NAN for f in flat]
        assert same(column, expected) and list(map(type, column)) == list(map(type, expected))


@pytest.mark.deep_recursion
def test_config_columns_of_configs_nested_as_deep_as_json_reads_them():
    """summary.json's config nests as deep as json.loads reads it here (~990 levels, less
    the caller's frames): the columns come from a loop on a stack of its own, not from
    Python's recursion, which one more frame a level would have run out of."""
    def loaded(depth, leaf):
        return json.loads('{"name": "x", "a": ' + '{"a": ' * depth + str(leaf) + "}" * depth + "}")

    depth = 1000
    while True:
        try:
            configs = [loaded(depth, 1), loaded(depth, 2), loaded(depth, 2)]
            break
        except RecursionError:
            depth -= 10
    assert depth > 900
    columns = compare.config_columns_of(configs)
    assert columns["a" + ".a" * depth] == [1, 2, 2] and columns["name"] == ["x"] * 3


# ---------------------------------------------------------------- summarize


def reference(values) -> dict:
    x = [float(v) for v in values if np.isfinite(v)]
    n = len(x)
    if n == 0:
        return {"n_used": 0, "mean": NAN, "std": NAN, "min": NAN, "max": NAN,
                "ci95_low": NAN, "ci95_high": NAN}
    mean = float(np.mean(np.array(x, dtype=np.float64)))
    if n == 1:
        return {"n_used": 1, "mean": mean, "std": NAN, "min": x[0], "max": x[0],
                "ci95_low": NAN, "ci95_high": NAN}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on identical values
        sem, std = float(stats.sem(x)), float(stats.tstd(x))
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=sem) if sem else (mean, mean)
    return {"n_used": n, "mean": mean, "std": std, "min": min(x),
            "max": max(x), "ci95_low": float(low), "ci95_high": float(high)}


@pytest.mark.parametrize("values", [
    [],
    [NAN, math.inf, -math.inf],
    [0.3],
    [0.3, NAN],
    [0.5, 0.7],
    [0.8, 0.82, 0.85, 0.79],
    [0.8, NAN, 0.82, math.inf, 0.85],
    [1, 2, 3, 4, 10],
    [0.25, 0.25, 0.25],
])
def test_summarize_equals_scipy(values):
    got = compare.summarize(values)
    want = reference(values)
    assert list(got) == list(want)
    assert got["n_used"] == want["n_used"]
    for key in list(want)[1:]:
        assert close(got[key], want[key]), (key, got[key], want[key])


@settings(max_examples=100, deadline=None)
@given(points=st.lists(st.tuples(st.integers(0, 6), st.floats(-1e6, 1e6)), min_size=1,
                       max_size=40))
def test_the_curves_summaries_of_every_epoch_at_once_equal_summarize_per_epoch(points):
    """series.summaries (vectorized: plot runs on 200,000 epochs took 17 s) gives what
    compare.summarize gives at each x: one value, equal values, many."""
    frame = pd.DataFrame(points, columns=["epoch", "test_acc"])
    got = series.summaries(frame, "epoch", "test_acc")
    assert got["epoch"].tolist() == sorted(set(frame["epoch"]))
    for _, row in got.iterrows():
        want = compare.summarize(frame.loc[frame["epoch"] == row["epoch"], "test_acc"])
        assert list(got.columns[1:]) == list(want)
        assert row["n_used"] == want["n_used"]
        for key in list(want)[1:]:
            assert math.isclose(row[key], want[key], rel_tol=1e-9, abs_tol=1e-9) or (
                math.isnan(row[key]) and math.isnan(want[key])), (key, row[key], want[key])


def test_summarize_single_precision_input_in_double_precision():
    values = [np.float32(v) for v in (0.1, 0.2, 0.7, 0.3, 0.11)]
    as_double = np.array([float(v) for v in values], dtype=np.float64)
    got = compare.summarize(values)
    assert got["mean"] == float(as_double.mean())
    assert got["std"] == float(as_double.std(ddof=1))
    got = compare.summarize(pd.Series([0.5, 0.7, NAN]))
    assert (got["n_used"], got["mean"]) == (2, pytest.approx(0.6))


# ---------------------------------------------------------------- difference


def welch_reference(x: dict, b: dict) -> dict:
    xv, bv = list(x.values()), list(b.values())
    ref = stats.ttest_ind(xv, bv, equal_var=False)
    ci = ref.confidence_interval(0.95)
    return {"test": "welch", "n_pairs": len(set(x) & set(b)), "n_baseline": len(b),
            "delta": float(np.mean(xv) - np.mean(bv)), "delta_ci95_low": float(ci.low),
            "delta_ci95_high": float(ci.high), "p_value": float(ref.pvalue)}


def paired_reference(x: dict, b: dict) -> dict:
    seeds = sorted(set(x) & set(b))
    ref = stats.ttest_rel([x[s] for s in seeds], [b[s] for s in seeds])
    ci = ref.confidence_interval(0.95)
    return {"test": "paired", "n_pairs": len(seeds), "n_baseline": len(b),
            "delta": float(np.mean([x[s] - b[s] for s in seeds])),
            "delta_ci95_low": float(ci.low), "delta_ci95_high": float(ci.high),
            "p_value": float(ref.pvalue)}


def none_reference(n_pairs: int, n_baseline: int = 0) -> dict:
    return {"test": "", "n_pairs": n_pairs, "n_baseline": n_baseline, "delta": NAN,
            "delta_ci95_low": NAN, "delta_ci95_high": NAN, "p_value": NAN}


DIFFERENCES = [
    ({}, {}, none_reference(0)),
    ({0: 0.5}, {}, none_reference(0)),
    ({0: 0.5}, {1: 0.4, 2: 0.5, 3: 0.6}, none_reference(0, 3)),
    ({1: 0.4, 2: 0.5, 3: 0.6}, {0: 0.5}, none_reference(0, 1)),
    ({0: 0.5, 1: 0.6}, {0: 0.4}, none_reference(1, 1)),
    ({0: 0.5, 1: 0.7}, {5: 0.4, 6: 0.5, 7: 0.65}, "welch"),
    ({0: 0.5, 1: 0.7, 2: 0.6}, {5: 0.4, 6: 0.5}, "welch"),
    ({0: 0.5, 1: 0.7}, {5: 0.4, 6: 0.55}, "welch"),
    ({0: 0.5, 1: 0.7, 2: 0.6}, {0: 0.4, 6: 0.5, 7: 0.45}, "welch"),  # one shared seed
    ({0: 0.5, 1: 0.7}, {0: 0.4, 1: 0.5}, "paired"),
    ({0: 0.5, 1: 0.7, 2: 0.65, 9: 0.1}, {0: 0.4, 1: 0.5, 2: 0.6, 8: 0.9}, "paired"),
]


@pytest.mark.parametrize(("x", "b", "want"), DIFFERENCES)
def test_difference_equals_scipy(x, b, want):
    if want == "welch":
        want = welch_reference(x, b)
    elif want == "paired":
        want = paired_reference(x, b)
    got = compare.difference(x, b)
    assert list(got) == STATS_KEYS
    assert (got["test"], got["n_pairs"], got["n_baseline"]) == (
        want["test"], want["n_pairs"], want["n_baseline"])
    for key in T_KEYS:
        assert close(got[key], want[key]), (key, got[key], want[key])
    assert got["effect"] == {"paired": "d_z", "welch": "g", "": ""}[want["test"]]


def test_welch_with_no_spread_has_a_zero_width_interval():
    got = compare.difference({0: 1.0, 1: 1.0}, {2: 0.5, 3: 0.5})
    assert (got["test"], got["delta"]) == ("welch", 0.5)
    assert (got["delta_ci95_low"], got["delta_ci95_high"]) == (0.5, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.ttest_ind([1.0, 1.0], [0.5, 0.5], equal_var=False).pvalue
    assert close(got["p_value"], float(ref))


def test_identical_values_give_nan_p_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paired = compare.difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
        welch = compare.difference({0: 1.0, 1: 1.0}, {2: 1.0, 3: 1.0})
    assert (paired["test"], paired["delta"]) == ("paired", 0.0)
    assert math.isnan(paired["p_value"]) and math.isnan(welch["p_value"])
    assert (welch["delta_ci95_low"], welch["delta_ci95_high"]) == (0.0, 0.0)


def test_difference_silences_only_runtime_warnings(monkeypatch):
    real = compare_stats.two_sided_p

    def noisy(*args, **kwargs):
        warnings.warn("0/0 in a t statistic", RuntimeWarning, stacklevel=2)
        warnings.warn("scipy says something else", DeprecationWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_stats, "two_sided_p", noisy)
    with pytest.warns(DeprecationWarning, match="something else") as caught:
        compare.difference({0: 0.5, 1: 0.7}, {0: 0.4, 1: 0.5})
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


# ---------------------------------------------------------------- tables built by hand


def runs_of(rows: list[dict], keys: list[str]) -> compare.RunTable:
    """A RunTable as load makes it: one row per run, config keys as columns."""
    full = []
    for i, row in enumerate(rows):
        base = {"run_id": f"r{i:02d}", "path": f"/runs/r{i:02d}", "status": "completed",
                "config_hash": f"h{i}", "epochs_done": 2, "started": "", "name": "exp"}
        full.append({**base, **row})
    return compare.RunTable(pd.DataFrame(full), ["name", *keys])


P = "model.bn.placement"
TABLE_RUNS = [
    {P: "none", "seed": 0, "final_test_acc": 0.70},
    {P: "before", "seed": 0, "final_test_acc": 0.80},
    {P: "none", "seed": 1, "final_test_acc": 0.74},
    {P: "before", "seed": 1, "final_test_acc": NAN, "status": "diverged"},
    {P: NAN, "seed": 0, "final_test_acc": 0.60},  # a run whose config lacks the key
    {P: "none", "seed": 2, "final_test_acc": 0.10, "status": "failed"},
    {P: "before", "seed": 2, "final_test_acc": 0.84},
    {P: "before", "seed": 3, "final_test_acc": 0.50, "status": "running"},
    {P: "none", "seed": 3, "final_test_acc": 0.20, "status": "interrupted"},
    {P: "none", "seed": 4, "final_test_acc": NAN},  # completed without a value
]


def test_table_groups_in_order_of_their_values_with_exact_counts_and_stats():
    t = compare.table(runs_of(TABLE_RUNS, [P]))
    assert list(t.columns) == [P, *compare.COUNT_COLUMNS, *compare.STAT_COLUMNS]
    assert list(t.index) == [0, 1, 2]
    assert t[P].tolist()[:2] == ["before", "none"] and pd.isna(t[P].iloc[2])  # absent last
    counts = t[compare.COUNT_COLUMNS].values.tolist()
    assert counts == [[4, 2, 1, 0, 0, 1], [5, 3, 0, 1, 1, 0], [1, 1, 0, 0, 0, 0]]
    assert t["metric"].tolist() == ["test_acc"] * 3 and t["at"].tolist() == ["final"] * 3
    assert t["selected_by"].tolist() == [""] * 3
    for i, values in enumerate(([0.80, 0.84], [0.70, 0.74], [0.60])):
        want = reference(values)
        for key, value in want.items():
            assert close(float(t[key].iloc[i]), value), (i, key)


def test_table_metric_and_at_name_the_column_used():
    """--at best reads summary.json's best where it was chosen as asked (val_loss for a
    loss): best_selected_by says so."""
    rows = [{**r, "best_train_loss": 0.1 * (i + 1), "best_selected_by": "val_loss"}
            for i, r in enumerate(TABLE_RUNS)]
    t = compare.table(runs_of(rows, [P]), metric="train_loss", at="best").set_index(P)
    assert t["metric"].tolist() == ["train_loss"] * 3 and t["at"].tolist() == ["best"] * 3
    assert t["selected_by"].tolist() == ["val_loss"] * 3
    assert t.loc["none", "mean"] == pytest.approx((0.1 + 0.3 + 1.0) / 3)


def test_table_of_no_runs_has_the_columns_and_no_rows():
    empty = compare.RunTable(pd.DataFrame(), [])
    t = compare.table(empty)
    assert list(t.columns) == ["name", *compare.COUNT_COLUMNS, *compare.STAT_COLUMNS]
    assert len(t) == 0
    r = compare.run_rows(empty)
    assert list(r.columns) == ["seed", "status", "test_acc", "run_id"] and len(r) == 0
    r = compare.run_rows(empty, metric="val_loss", at="best")
    assert list(r.columns) == ["seed", "status", "val_loss", "run_id"]


def test_runs_of_one_config_are_grouped_by_name(tmp_path):
    fake_run(tmp_path, 0, [0.5, 0.8])
    fake_run(tmp_path, 1, [0.5, 0.9])
    found = compare.load(tmp_path)
    assert compare.group_keys(found, None) == ["name"]
    t = compare.table(found)
    assert list(t.columns)[:2] == ["name", "n"]
    assert (t["name"].tolist(), t["n"].tolist()) == (["exp"], [2])
    assert t["mean"].iloc[0] == pytest.approx(0.85)
    assert compare.run_rows(found)["name"].tolist() == ["exp", "exp"]


def test_metric_and_at_errors_exactly():
    with pytest.raises(BadInput) as e:
        compare.check_metric("nope", "final")
    assert str(e.value) == "--metric nope: expected one of " + ", ".join(METRICS)
    with pytest.raises(BadInput) as e:
        compare.check_metric("test_acc", "last")
    assert str(e.value) == "--at last: expected final or best"
    with pytest.raises(BadInput, match="^--at last: expected final or best$"):
        compare.table(runs_of(TABLE_RUNS, [P]), at="last")


# ---------------------------------------------------------------- baselines


LR = "optimizer.learning_rate"
A = {0: 0.60, 1: 0.62, 2: 0.61}
B = {0: 0.70, 1: 0.75, 2: 0.71}
C = {0: 0.50, 1: 0.55}
D = {5: 0.58, 6: 0.66}
E = {0: 0.9, 1: 0.8}
BASELINE_GROUPS = [("x=1", 0.1, A), ("y", 0.1, B), ("x=1", 1.0, C), ("y", 1.0, D),
                   ("y", 9.0, E)]


def baseline_runs() -> compare.RunTable:
    rows = [{"tag": tag, LR: lr, "seed": s, "final_test_acc": v}
            for tag, lr, seeds in BASELINE_GROUPS for s, v in seeds.items()]
    rows.append({"tag": "y", LR: 0.1, "seed": 7, "final_test_acc": 0.1, "status": "failed"})
    return runs_of(rows, ["tag", LR])


def test_baseline_rows_exactly():
    t = compare.table(baseline_runs(), baseline="tag=x=1")
    assert list(t.columns) == ["tag", LR, *compare.COUNT_COLUMNS, *compare.STAT_COLUMNS,
                               *compare.BASELINE_COLUMNS]
    order = [0, 2, 1, 3, 4]  # sorted by tag, then rate
    assert list(zip(t["tag"], t[LR], strict=True)) == [BASELINE_GROUPS[i][:2] for i in order]
    assert t["baseline"].tolist() == ["(baseline)", "(baseline)", "tag=x=1", "tag=x=1",
                                      compare.UNLIKE]
    wants = [none_reference(0), none_reference(0), paired_reference(B, A),
             welch_reference(D, C), none_reference(0)]
    for i, want in enumerate(wants):
        assert (t["test"].iloc[i], t["n_pairs"].iloc[i]) == (want["test"], want["n_pairs"])
        for key in T_KEYS:
            assert close(float(t[key].iloc[i]), want[key]), (i, key)
    holm = [min(1, 2 * min(wants[2]["p_value"], wants[3]["p_value"])),
            min(1, max(2 * min(wants[2]["p_value"], wants[3]["p_value"]),
                       max(wants[2]["p_value"], wants[3]["p_value"])))]
    by_p = sorted([2, 3], key=lambda i: wants[i]["p_value"])
    assert close(float(t["p_holm"].iloc[by_p[0]]), holm[0])
    assert close(float(t["p_holm"].iloc[by_p[1]]), holm[1])
    assert t["effect"].tolist() == ["", "", "d_z", "g", ""]


def test_baseline_errors_exactly():
    found = baseline_runs()
    cases = {
        "tag": "--baseline 'tag': expected KEY=VALUE, e.g. model.bn.placement=none",
        "foo=1": "--baseline foo: not one of the grouping keys (tag, optimizer.learning_rate)",
        "tag=z": "--baseline tag=z: no group has tag=z (values: x=1, y)",
    }
    for baseline, message in cases.items():
        with pytest.raises(BadInput) as e:
            compare.table(found, baseline=baseline)
        assert str(e.value) == message


def test_add_baseline_keeps_the_index_of_the_table_it_is_given():
    out = pd.DataFrame({"tag": ["b", "a", "c"], "_seeds": [{0: 0.7, 1: 0.8}, {0: 0.5, 1: 0.6},
                                                          {3: 0.1, 4: 0.2}]},
                       index=[5, 6, 9])
    got = compare.add_baseline(out, ["tag"], "tag=a")
    assert list(got.index) == [5, 6, 9]
    assert got["baseline"].tolist() == ["tag=a", "(baseline)", "tag=a"]
    assert got["test"].tolist() == ["paired", "", "welch"]
    assert got["delta"].iloc[0] == pytest.approx(0.2)


# ---------------------------------------------------------------- run_rows


def test_run_rows_exactly():
    found = baseline_runs()
    r = compare.run_rows(found)
    assert list(r.columns) == ["tag", LR, "seed", "status", "epochs_done", "test_acc", "run_id"]
    assert list(r.index) == list(range(len(r)))
    rows = [tuple(row) for row in r[["tag", LR, "seed", "status", "test_acc"]].values]
    expected = sorted([(tag, lr, s, "completed", v) for tag, lr, seeds in BASELINE_GROUPS
                       for s, v in seeds.items()] + [("y", 0.1, 7, "failed", 0.1)])
    assert rows == expected
    by_id = dict(zip(found.table["run_id"], found.table["final_test_acc"], strict=True))
    assert [by_id[i] for i in r["run_id"]] == r["test_acc"].tolist()


def test_run_rows_by_and_metric():
    """--by tag over runs that also differ by placement: placement is a column too (its
    runs are not pooled); sorted by tag, placement (absent last), seed; --at best adds
    the epoch chosen."""
    rows = [{**row, "best_train_loss": i / 10, "best_epoch": 2.0, "best_selected_by": "val_loss"}
            for i, row in enumerate(TABLE_RUNS)]
    found = runs_of([{**row, "tag": "t"} for row in rows], [P, "tag"])
    r = compare.run_rows(found, metric="train_loss", at="best", by=["tag"])
    assert list(r.columns) == ["tag", P, "seed", "status", "epochs_done", "train_loss", "epoch",
                               "run_id"]
    assert r["run_id"].tolist() == ["r01", "r03", "r06", "r07", "r00", "r02", "r05", "r08",
                                    "r09", "r04"]
    assert r["train_loss"].tolist() == pytest.approx([0.1, 0.3, 0.6, 0.7, 0.0, 0.2, 0.5, 0.8,
                                                      0.9, 0.4])
    assert r["epoch"].tolist() == [2] * 10
    assert r.attrs["warnings"] == [f"--by tag: the runs also differ by {P}: a row for each of "
                                   "its values (runs of other settings are never pooled)"]
    r = compare.run_rows(found, by=[P])
    assert list(r.columns) == [P, "seed", "status", "epochs_done", "test_acc", "run_id"]


def test_load_table_and_run_rows_agree_on_real_folders(tmp_path):
    for seed, acc in enumerate([0.80, 0.82, 0.86]):
        fake_run(tmp_path, seed, [0.5, acc], model__bn__placement="before")
    for seed, acc in enumerate([0.70, 0.75]):
        fake_run(tmp_path, seed, [0.5, acc], model__bn__placement="none")
    found = compare.load(tmp_path)
    assert sorted(found.table["epochs_done"]) == [2, 2, 2, 2, 2]
    assert sorted(found.table["seed"]) == [0, 0, 1, 1, 2]
    assert found.table["started"].str.startswith("2026-01-01T00:00:0").all()
    assert found.table["config_hash"].str.len().min() > 0
    t = compare.table(found, baseline=f"{P}=none").set_index(P)
    want = paired_reference({0: 0.80, 1: 0.82}, {0: 0.70, 1: 0.75})
    assert t.loc["before", "baseline"] == f"{P}=none"
    assert t.loc["before", "p_value"] == pytest.approx(want["p_value"])
    assert t.loc["none", "baseline"] == "(baseline)"
    r = compare.run_rows(found)
    assert r[[P, "seed"]].values.tolist() == [["before", 0], ["before", 1], ["before", 2],
                                              ["none", 0], ["none", 1]]
    assert r["test_acc"].tolist() == pytest.approx([0.80, 0.82, 0.86, 0.70, 0.75])
    assert [Path(p).name for p in found.table.sort_values([P, "seed"])["path"]] == \
        r["run_id"].tolist()


def test_a_baseline_no_group_has_is_bad_input_even_beside_a_missing_key():
    """A run whose config lacks the grouping key (NaN) used to make the "values: ..."
    message a TypeError; it reads (absent), apart from null."""
    with pytest.raises(BadInput) as error:
        compare.table(runs_of(TABLE_RUNS, [P]), baseline=f"{P}=after")
    assert str(error.value) == (f"--baseline {P}=after: no group has {P}=after "
                                "(values: (absent), before, none)")


def test_a_missing_key_is_not_the_null_baseline():
    """Runs older than a key (NaN) and runs where it is null were both "null": the
    baseline data.limit=null took either group for the other."""
    rows = [{"limit": value, "seed": seed, "final_test_acc": 0.5 + 0.1 * k + 0.01 * seed}
            for k, value in enumerate(("null", NAN)) for seed in (0, 1, 2)]
    t = compare.table(runs_of(rows, ["limit"]), by=["limit"], baseline="limit=null")
    assert t["baseline"].tolist() == ["(baseline)", "limit=null"]
    assert close(float(t["delta"].iloc[1]), 0.1)
    with pytest.raises(BadInput, match=r"values: \(absent\), null"):
        compare.table(runs_of(rows, ["limit"]), by=["limit"], baseline="limit=7")


def test_a_numeric_baseline_matches_a_column_made_float_by_a_missing_key():
    """Widths 1 and 2 and one run without the key: pandas holds 1.0, 2.0, NaN; the
    baseline width=1 still finds its group."""
    rows = [{"w": w, "seed": seed, "final_test_acc": acc + 0.01 * seed}
            for w, acc in ((1, 0.5), (2, 0.7)) for seed in (0, 1)]
    rows.append({"w": NAN, "seed": 0, "final_test_acc": 0.6})
    t = compare.table(runs_of(rows, ["w"]), baseline="w=1")
    assert t["baseline"].tolist()[:2] == ["(baseline)", "w=1"]
    assert t["test"].iloc[1] == "paired" and close(float(t["delta"].iloc[1]), 0.2)


def test_a_baseline_value_is_read_as_yaml_like_the_config():
    """--baseline lr=1e-3 finds the group whose config says 0.001."""
    rows = [{"lr": lr, "seed": seed, "final_test_acc": acc + 0.01 * seed}
            for lr, acc in ((0.001, 0.5), (0.01, 0.7)) for seed in (0, 1)]
    t = compare.table(runs_of(rows, ["lr"]), baseline="lr=1e-3")
    assert t["baseline"].tolist() == ["(baseline)", "lr=1e-3"]


# ---------------------------------------------------------------- hostile run folders


def raw_run(folder: Path, config: dict, acc: float = 0.5, as_yaml=False) -> Path:
    """A run folder written by hand: summary.json (the config in it, or in config.yaml),
    and a metrics.csv."""
    folder.mkdir(parents=True)
    summary = {"status": "completed", "final": {"test_acc": acc}, "epochs_done": 1}
    if as_yaml:
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    else:
        summary["config"] = config
    (folder / "summary.json").write_text(json.dumps(summary, default=str), encoding="utf-8",
                                         errors="surrogatepass")
    (folder / "metrics.csv").write_text(
        f"epoch,train_loss,train_acc,val_acc,test_acc\n1,1,0.5,{acc},{acc}\n")
    return folder


config_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
    st.text(st.characters(), max_size=4), st.dates(), st.sampled_from([10**400, "\ud800x"]))
config_values = st.recursive(config_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]), inner,
                                                  max_size=2)), max_leaves=5)
config_keys = st.sampled_from(["seed", "name", "lr", "status", "n", "metric", "cfg:x", "x",
                               "run_id", "_value", "group", "test_acc", "final_test_acc"])


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(configs=st.lists(st.dictionaries(config_keys, config_values, max_size=4),
                        min_size=1, max_size=4))
def test_any_config_values_make_a_table_and_every_output(tmp_path_factory, configs):
    """Config values of any JSON shape and type, or a date (YAML): seeds that are lists,
    text beside numbers, names of compare's own columns, lone surrogates, numbers beyond
    range. load, table, run_rows, curves and every format of the table all answer."""
    folder = tmp_path_factory.mktemp("runs")
    for i, config in enumerate(configs):
        config = {"name": "n", **config}
        try:  # every other run's config in config.yaml, where YAML can write it (dates)
            as_yaml = i % 2 == 1 and bool(yaml.safe_dump(config))
        except yaml.YAMLError:
            as_yaml = False
        raw_run(folder / f"r{i}", config, acc=0.5 + i / 10, as_yaml=as_yaml)
    found = compare.load(folder)
    seeds = found.table.get("seed", pd.Series(dtype=object))
    assert seeds.map(lambda s: s is None or isinstance(s, int | float) and (
        s != s or float(s).is_integer())).all()  # whole numbers, NaN where none
    assert not set(found.config_keys) & compare.OWN_COLUMNS
    outputs = [compare.table(found), compare.run_rows(found), compare.table(found, at="best")]
    for frame in outputs:
        assert frame.columns.is_unique
        for text in (frame.to_csv(), frame.to_json(), tables.to_markdown(frame)):
            text.encode("utf-8")
        tables.rich_table(frame)
    series.curves(found, "test_acc")


def test_config_keys_of_compares_own_columns_are_left_out_with_a_warning(tmp_path):
    for i, status in enumerate(["a", "b"]):
        raw_run(tmp_path / f"r{i}", {"name": "x", "seed": i, "status": status, "n": 5,
                                     "rate": [1, "0.1"][i], "cfg:x": 1})
    found = compare.load(tmp_path)
    assert found.config_keys == ["cfg:x", "name", "rate"]
    assert found.warnings == ["config keys left out: n, status (compare's own columns have "
                              "these names)"]
    assert found.table["rate"].tolist() == ["1", "0.1"]  # text beside a number: all text
    t = compare.table(found)
    assert t["rate"].tolist() == ["0.1", "1"] and t["n"].tolist() == [1, 1]  # as numbers
    assert compare.run_rows(found)["rate"].tolist() == ["0.1", "1"]


def test_compare_writes_nothing_when_drawing_its_plot_fails(tmp_path, monkeypatch):
    """--out and --plot: both are made before either is written."""
    from bnexp.views import plots

    raw_run(tmp_path / "runs" / "r0", {"name": "x", "seed": 0})

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(plots, "figure_curves", broken)
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs"), "--out",
                                      str(tmp_path / "t.csv"), "--plot", str(tmp_path / "c.png")])
    assert isinstance(result.exception, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_lone_surrogates_in_a_summary_reach_every_output(tmp_path):
    for seed in range(2):
        raw_run(tmp_path / "runs" / f"r{seed}", {"name": "\ud800x", "seed": seed})
    base = ["compare", str(tmp_path / "runs")]
    for extra in (["--format", "json"], ["--out", str(tmp_path / "t.csv")],
                  ["--plot", str(tmp_path / "c.png")], ["--runs"]):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 0, result.output
    assert "\\ud800x" in (tmp_path / "t.csv").read_text()
    result = CliRunner().invoke(app, ["plot", "runs", str(tmp_path / "runs"), "--out",
                                      str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- frame


def test_frame_is_the_group_table_or_with_per_run_the_run_rows(tmp_path):
    """compare's one entry (the CLI's and the API's): every option reaches the function
    that answers it."""
    from tests.helpers import fake_run_rows

    for lr in (0.1, 1.0):
        for seed in range(2):
            acc = 0.6 + lr / 10 + seed / 100
            fake_run_rows(tmp_path, [{"train_acc": acc, "val_acc": 0.6, "val_loss": 0.4,
                                      "test_acc": acc - 0.1},
                                     {"train_acc": acc - 0.05, "val_acc": 0.5, "val_loss": 0.3,
                                      "test_acc": acc}], seed=seed,
                          optimizer__learning_rate=lr, model__bn__placement="none")
    found = compare.load(tmp_path)
    for metric, at, by, baseline, select in [
            ("test_acc", "final", None, None, None),
            ("train_acc", "best", ["optimizer.learning_rate"], "optimizer.learning_rate=0.1",
             None),
            ("test_acc", "best", ["model.bn.placement"], None, "val_loss")]:
        pd.testing.assert_frame_equal(
            compare.frame(found, metric, at, by, baseline, False, select=select),
            compare.table(found, metric, at, by, baseline, select))
        pd.testing.assert_frame_equal(
            compare.frame(found, metric, at, by, baseline, True, select=select),
            compare.run_rows(found, metric, at, by, select))
    assert list(compare.frame(found, "test_acc", "final", ["model.bn.placement"], None,
                              True).columns)[0] == "model.bn.placement"
    chosen = compare.frame(found, "test_acc", "final", None, None, False,
                           columns=["mean,n", "optimizer.learning_rate"])
    assert list(chosen.columns) == ["mean", "n", "optimizer.learning_rate"]
