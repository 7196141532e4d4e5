"""compare's statistics over seeds: a group's mean, std and 95% interval; a group against
its baseline (paired t-test, or Welch's), with an effect size and its interval; Holm's
adjustment of several p-values; when a test rests on too few runs to say much.

Each is checked against scipy / statsmodels in the tests (tests/test_compare_stats.py).
From scipy.special, not scipy.stats: importing scipy.stats took 1.5 s of `compare
--baseline`'s 7.4 s over 10,000 runs. No TensorFlow here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special

MIN_N = 5  # fewer pairs (or runs a group, Welch) than this: compare warns (docs/compare.md)
MAX_T = 1000.0  # beyond |t| this, the effect size's interval is left empty (see _nc_interval)
DIFFERENCE_KEYS = ["test", "n_pairs", "n_baseline", "delta", "delta_ci95_low",
                   "delta_ci95_high", "p_value", "effect", "effect_size", "effect_ci95_low",
                   "effect_ci95_high"]


def summarize(values) -> dict:
    """n_used, mean, std, min, max and the 95% Student-t interval of the mean."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    n = len(x)
    out = {"n_used": n, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan,
           "ci95_low": math.nan, "ci95_high": math.nan}
    if n == 0:
        return out
    out.update(mean=float(x.mean()), min=float(x.min()), max=float(x.max()))
    if n >= 2:
        std = float(x.std(ddof=1))
        half = t_quantile(n - 1) * std / math.sqrt(n)
        out.update(std=std, ci95_low=out["mean"] - half, ci95_high=out["mean"] + half)
    return out


def difference(x: dict, b: dict) -> dict:
    """Group minus baseline. x, b: seed (or what pairs two runs) -> value. Paired over
    shared seeds (at least two), else Welch (at least two values each), else nothing.

    With the test, an effect size: Cohen's d_z for paired (the mean difference over the
    std of the differences), Hedges' g for Welch (the difference of the means over the
    pooled std, bias-corrected), each with the exact 95% interval of the standardized
    difference (noncentral t). Identical differences (std 0) leave p and the effect size
    undefined: NaN, without scipy's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _difference(x, b)


def _difference(x: dict, b: dict) -> dict:
    shared = sorted(set(x) & set(b))
    out = {"test": "", "n_pairs": len(shared), "n_baseline": len(b), "delta": math.nan,
           "delta_ci95_low": math.nan, "delta_ci95_high": math.nan, "p_value": math.nan,
           "effect": "", "effect_size": math.nan, "effect_ci95_low": math.nan,
           "effect_ci95_high": math.nan}
    if len(shared) >= 2:
        d = np.array([x[s] - b[s] for s in shared])
        mean, std = float(d.mean()), float(d.std(ddof=1))
        half = t_quantile(len(d) - 1) * std / math.sqrt(len(d))
        p = two_sided_p(np.divide(d.mean(), d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1)
        out.update(test="paired", delta=mean, p_value=p, **paired_effect(d))
    elif len(x) >= 2 and len(b) >= 2:
        xv, bv = np.array(list(x.values())), np.array(list(b.values()))
        vx, vb = xv.var(ddof=1) / len(xv), bv.var(ddof=1) / len(bv)
        se = math.sqrt(vx + vb)
        # Welch-Satterthwaite on the shares of the variance: squaring vx and vb themselves
        # underflows to 0/0 for spreads of ~1e-148
        share_x, share_b = (vx / (vx + vb), vb / (vx + vb)) if se else (0.0, 0.0)
        df = 1 / (share_x**2 / (len(xv) - 1) + share_b**2 / (len(bv) - 1)) if se else 1.0
        mean, half = float(xv.mean() - bv.mean()), t_quantile(df) * se
        p = two_sided_p(np.divide(xv.mean() - bv.mean(), se), df)
        out.update(test="welch", delta=mean, p_value=p, **hedges_effect(xv, bv))
    else:
        return out
    out.update(delta_ci95_low=mean - half, delta_ci95_high=mean + half)
    return out


def paired_effect(d) -> dict:
    """Cohen's d_z of paired differences d: mean(d) / std(d) (n - 1), and the exact 95%
    interval of the population's d_z: the noncentrality parameters whose noncentral t
    (n - 1 degrees of freedom) puts the observed t = d_z·√n at its 97.5% and 2.5% points,
    divided by √n (Steiger & Fouladi 1997; Lakens 2013's worked example: d_z 1.50)."""
    d = np.asarray(d, dtype=float)
    n, std = len(d), float(d.std(ddof=1))
    if n < 2 or not std > 0:
        return {"effect": "d_z", "effect_size": math.nan, "effect_ci95_low": math.nan,
                "effect_ci95_high": math.nan}
    dz = float(d.mean()) / std
    low, high = _nc_interval(dz * math.sqrt(n), n - 1)
    return {"effect": "d_z", "effect_size": dz, "effect_ci95_low": low / math.sqrt(n),
            "effect_ci95_high": high / math.sqrt(n)}


def hedges_effect(x, b) -> dict:
    """Hedges' g of x against b: (mean x - mean b) over the pooled std, times the bias
    correction 1 - 3 / (4 (n_x + n_b) - 9) (as statsmodels' effectsize_smd; Lakens 2013's
    worked example: g 1.08), and the exact 95% interval of the population's standardized
    difference: noncentral t on the pooled t statistic, n_x + n_b - 2 degrees of freedom."""
    x, b = np.asarray(x, dtype=float), np.asarray(b, dtype=float)
    nx, nb = len(x), len(b)
    pooled = math.sqrt(((nx - 1) * x.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (nx + nb - 2))
    if not pooled > 0:
        return {"effect": "g", "effect_size": math.nan, "effect_ci95_low": math.nan,
                "effect_ci95_high": math.nan}
    d = float(x.mean() - b.mean()) / pooled
    scale = math.sqrt(nx * nb / (nx + nb))
    low, high = _nc_interval(d * scale, nx + nb - 2)
    return {"effect": "g", "effect_size": d * (1 - 3 / (4 * (nx + nb) - 9)),
            "effect_ci95_low": low / scale, "effect_ci95_high": high / scale}


def _nc_interval(t: float, df: int) -> tuple[float, float]:
    """The 95% interval of a noncentral t's noncentrality given an observed t: (the one
    that puts t at its 97.5% point, the one at its 2.5%). Empty (NaN) beyond |t| = MAX_T,
    where scipy's search takes seconds (a minute at 10^6) and the effect is no question
    of statistics; computed for |t| and mirrored, as scipy is exact on neither side."""
    if not abs(t) <= MAX_T:
        return math.nan, math.nan
    low = float(special.nctdtrinc(df, 0.975, abs(t)))
    high = float(special.nctdtrinc(df, 0.025, abs(t)))
    return (low, high) if t >= 0 else (-high, -low)


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of the finite p-values among p_values (NaN stays NaN),
    as statsmodels' multipletests(method="holm"): the i-th smallest of m becomes
    max over j <= i of min(1, (m - j + 1) p_(j))."""
    p = [float(v) for v in p_values]
    finite = sorted((v, i) for i, v in enumerate(p) if math.isfinite(v))
    out = [math.nan] * len(p)
    running = 0.0
    for rank, (value, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * value))
        out[i] = running
    return out


def too_few(test: str, n_pairs: int, n_used: int, n_baseline: int) -> bool:
    """Whether a test ran on fewer than MIN_N pairs (paired) or runs a group (Welch)."""
    if test == "paired":
        return n_pairs < MIN_N
    return test == "welch" and min(n_used, n_baseline) < MIN_N


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of Student's t statistic t with df degrees of freedom, as
    scipy.stats' ttest_rel and ttest_ind (Welch) give it: 2 P(T > |t|); 0 where t is
    infinite (a constant nonzero difference), NaN where it is 0/0."""
    return float(2 * special.stdtr(df, -abs(t)))


def t_quantile(df: float) -> float:
    """Student's t 97.5% quantile with df degrees of freedom: what scipy.stats.t.ppf
    computes, from scipy.special."""
    return float(special.stdtrit(df, 0.975))
