"""compare's effect sizes, Holm's adjustment and its few-seeds warning, checked against a
published worked example (Lakens 2013), scipy's noncentral t and statsmodels, on numbers
and on real run folders. No TensorFlow."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import effectsize_smd
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from bnexp.analysis import compare
from bnexp.analysis import stats as compare_stats
from bnexp.cli import app
from tests.helpers import fake_run

# Lakens (2013), "Calculating and reporting effect sizes to facilitate cumulative science",
# Frontiers in Psychology 4:863, Table 1: two movies rated by the same ten people
MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]


def nc_interval(t: float, df: int) -> tuple[float, float]:
    """The 95% interval of a noncentral t's noncentrality given the observed t, found by
    scipy.stats.nct and a root finder (what bnexp computes from scipy.special): each root
    bracketed on a grid first, where scipy's cdf is a number (far off, it is NaN)."""
    grid = np.arange(t - 20, t + 20, 0.25)

    def at(p):
        f = [stats.nct.cdf(t, df, nc) - p for nc in grid]
        for i in range(len(grid) - 1):
            if np.isfinite(f[i]) and np.isfinite(f[i + 1]) and f[i] * f[i + 1] <= 0:
                return optimize.brentq(lambda nc: stats.nct.cdf(t, df, nc) - p, grid[i],
                                       grid[i + 1], xtol=1e-12)
        raise AssertionError(f"no root for p = {p}")
    return at(0.975), at(0.025)


def test_effect_sizes_equal_lakens_worked_example():
    """Paired: t(9) = 4.74, d_z = 1.50; independent: d_s = 1.13, Hedges' g_s = 1.08."""
    paired = compare.difference(dict(enumerate(MOVIE_1)), dict(enumerate(MOVIE_2)))
    assert (paired["test"], paired["effect"]) == ("paired", "d_z")
    assert round(paired["effect_size"], 2) == 1.50
    assert paired["effect_size"] == pytest.approx(1.5)  # mean 1, std 2/3, exactly
    assert round(paired["effect_size"] * math.sqrt(10), 2) == 4.74  # t(9)
    assert round(paired["p_value"], 3) == 0.001
    welch = compare.difference(dict(enumerate(MOVIE_1)),
                               {10 + i: v for i, v in enumerate(MOVIE_2)})
    assert (welch["test"], welch["effect"]) == ("welch", "g")
    assert round(welch["effect_size"], 2) == 1.08
    d_s = welch["effect_size"] / (1 - 3 / (4 * 20 - 9))
    assert round(d_s, 2) == 1.13


@pytest.mark.parametrize("x, b", [
    (MOVIE_1, MOVIE_2),
    ([0.81, 0.84, 0.80], [0.78, 0.80, 0.79]),
    ([0.70, 0.71, 0.69, 0.75, 0.72], [0.72, 0.70, 0.71, 0.70, 0.73]),
    ([0.5, 0.6], [0.55, 0.52]),
    ([0.2, 0.1, 0.3, 0.25], [0.4, 0.45, 0.35, 0.42]),  # a negative effect
])
def test_paired_d_z_and_its_interval_equal_scipy(x, b):
    got = compare.difference(dict(enumerate(x)), dict(enumerate(b)))
    d = np.subtract(x, b)
    dz = d.mean() / d.std(ddof=1)
    low, high = nc_interval(dz * math.sqrt(len(d)), len(d) - 1)
    assert got["effect_size"] == pytest.approx(dz, rel=1e-12)
    assert got["effect_ci95_low"] == pytest.approx(low / math.sqrt(len(d)), rel=1e-5, abs=1e-7)
    assert got["effect_ci95_high"] == pytest.approx(high / math.sqrt(len(d)), rel=1e-5, abs=1e-7)
    assert got["effect_ci95_low"] < dz < got["effect_ci95_high"]


@pytest.mark.parametrize("x, b", [
    (MOVIE_1, MOVIE_2),
    ([0.81, 0.84, 0.80], [0.78, 0.80, 0.79, 0.77]),
    ([0.5, 0.6], [0.55, 0.52, 0.58]),
    ([0.2, 0.1, 0.3, 0.25, 0.2], [0.4, 0.45, 0.35]),
])
def test_hedges_g_equals_statsmodels_and_its_interval_scipy(x, b):
    got = compare.difference(dict(enumerate(x)), {100 + i: v for i, v in enumerate(b)})
    g, _ = effectsize_smd(np.mean(x), np.std(x, ddof=1), len(x), np.mean(b), np.std(b, ddof=1),
                          len(b))
    assert got["effect_size"] == pytest.approx(float(g), rel=1e-12)
    t = stats.ttest_ind(x, b, equal_var=True).statistic  # the pooled t: d * sqrt(nx nb / n)
    scale = math.sqrt(len(x) * len(b) / (len(x) + len(b)))
    low, high = nc_interval(t, len(x) + len(b) - 2)
    assert got["effect_ci95_low"] == pytest.approx(low / scale, rel=1e-5, abs=1e-7)
    assert got["effect_ci95_high"] == pytest.approx(high / scale, rel=1e-5, abs=1e-7)


def test_no_effect_size_without_spread_nor_an_interval_past_any_question():
    """Identical differences: d_z undefined (NaN). A t beyond 1000: the effect, no interval
    (scipy's search took a minute at t = 10^6)."""
    flat = compare.difference({0: 0.6, 1: 0.7}, {0: 0.5, 1: 0.6})
    assert flat["effect"] == "d_z" and math.isnan(flat["effect_size"])
    huge = compare.difference({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.1, 1: 0.2 - 1e-6, 2: 0.3})
    assert huge["effect_size"] > 1000 and math.isnan(huge["effect_ci95_low"])


HOLM_CASES = [[0.01], [0.01, 0.04, 0.03], [0.02, 0.02, 0.5], [0.3, math.nan, 0.01, 0.6],
              [0.0, 1.0, 0.9, 0.45], [math.nan, math.nan], [0.04, 0.01, 0.02, 0.03, 0.05]]


def holm_examples(test):
    for case in HOLM_CASES:  # ties, NaN, the cap at 1: always tried
        test = example(case)(test)
    return test


@settings(max_examples=20, deadline=None)  # multipletests takes 30 ms a call
@given(st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.01, 0.04, 0.5, 1.0,
                                                             math.nan])),
                min_size=1, max_size=12))
@holm_examples
def test_holm_equals_statsmodels_multipletests(p_values):
    got = compare_stats.holm(p_values)
    finite = [p for p in p_values if not math.isnan(p)]
    want = iter(multipletests(finite, method="holm")[1] if finite else [])
    for p, adjusted in zip(p_values, got, strict=True):
        if math.isnan(p):
            assert math.isnan(adjusted)
        else:
            assert adjusted == pytest.approx(float(next(want)), abs=1e-15)


def arms_against_none(folder, seeds, gains):
    """Runs of placement none and of each other placement with its gain over none, per
    seed: a real runs folder."""
    for seed in range(seeds):
        base = 0.70 + 0.01 * seed
        fake_run(folder, seed, [base], model__bn__placement="none")
        for placement, gain in gains.items():
            fake_run(folder, seed, [base + gain + 0.004 * seed * (seed % 3)],
                     model__bn__placement=placement)


def test_holm_over_several_arms_against_one_baseline_equals_statsmodels(tmp_path):
    arms_against_none(tmp_path, 4, {"before": 0.02, "after": 0.01})
    t = compare.table(compare.load(tmp_path), baseline="model.bn.placement=none")
    tested = t[t["test"] != ""]
    assert tested["model.bn.placement"].tolist() == ["after", "before"]
    want = multipletests(tested["p_value"].tolist(), method="holm")[1]
    assert tested["p_holm"].tolist() == pytest.approx(list(want), rel=1e-12)
    assert t.loc[t["test"] == "", "p_holm"].isna().all()


def test_a_test_on_fewer_than_five_seeds_is_warned_about(tmp_path):
    arms_against_none(tmp_path / "three", 3, {"before": 0.02})
    arms_against_none(tmp_path / "five", 5, {"before": 0.02})
    three = compare.table(compare.load(tmp_path / "three"), baseline="model.bn.placement=none")
    assert three.attrs["warnings"] == [
        "1 of 1 tests ran on fewer than 5 seeds (paired on 3 pairs): so few cannot check the "
        "normality a t-test assumes, and p and the intervals swing from one set of seeds to "
        "the next; read them as rough (docs/compare.md#what-a-p-value-from-3-seeds-can-tell)"]
    five = compare.table(compare.load(tmp_path / "five"), baseline="model.bn.placement=none")
    assert five.attrs["warnings"] == []
    assert compare.table(compare.load(tmp_path / "three")).attrs["warnings"] == []


def test_the_terminal_table_says_which_test_on_how_many_and_the_effect(tmp_path):
    arms_against_none(tmp_path, 3, {"before": 0.02, "after": 0.01})
    result = CliRunner().invoke(app, ["compare", str(tmp_path), "--baseline",
                                      "model.bn.placement=none"])
    assert result.exit_code == 0, result.output
    for text in ("p (test, n)", "(paired, 3 pairs)", "p Holm", "effect [95% CI]", "d_z +"):
        assert text in result.stdout, text
    assert result.stderr.startswith("warning: 2 of 2 tests ran on fewer than 5 seeds")
