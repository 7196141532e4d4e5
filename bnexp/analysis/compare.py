"""Run folders -> one DataFrame of runs -> one row per group of runs that differ only by seed.

Statistics are over seeds: mean, sample std, min, max and a 95% Student-t
confidence interval of the mean. Only completed runs enter them; diverged,
failed, interrupted and running runs are counted in their own columns. With a
baseline, each group is compared with the baseline group that matches it in
every other key: a paired t-test over the seeds both ran (the sweep's paired
design), or Welch's t-test where fewer than two seeds are shared.

No TensorFlow here: compare must answer in a blink over a thousand runs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import special

from bnexp import runs
from bnexp.analysis import arms
from bnexp.errors import BadInput, did_you_mean
from bnexp.yamltext import flatten, format_value, parse_yaml

METRICS = runs.EPOCH_COLUMNS[1:]
COUNT_COLUMNS = ["n", "completed", "diverged", "failed", "interrupted", "running"]
STAT_COLUMNS = ["metric", "at", "n_used", "mean", "std", "min", "max", "ci95_low", "ci95_high"]
UNLIKE = "(none alike)"  # no baseline group has this group's other settings: no delta, no p
BASELINE_COLUMNS = ["baseline", "test", "n_pairs", "delta", "delta_ci95_low", "delta_ci95_high",
                    "p_value"]
# the columns compare and plot make of their own: no config key may take one of these names
OWN_COLUMNS = {"run_id", "path", "status", "seed", "config_hash", "epochs_done", "started",
               "group", "_value", "_seeds", *COUNT_COLUMNS, *STAT_COLUMNS, *BASELINE_COLUMNS,
               *METRICS, *(f"{at}_{m}" for at in ("final", "best") for m in METRICS)}


@dataclass
class RunTable:
    """Every run found under a folder (the attempts that count), as one table: a row per
    run, config keys as dotted columns; what compare, plot and bnexp.load_runs read."""

    table: pd.DataFrame
    config_keys: list[str]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading


def load(runs_dir: Path) -> RunTable:
    """Read every run folder beneath runs_dir; broken or foreign folders become warnings.
    Of several attempts of one config and seed, the one that counts is kept.

    Config keys are columns beside compare's own (OWN_COLUMNS): a config key of one of
    those names (a foreign config) is left out with a warning. A key whose values are
    text in some runs and numbers in others is compared as text (as _shown writes it)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BadInput(f"{runs_dir}: RUNS_DIR: no such folder")
    kept, warnings = runs.scan_latest(runs_dir, with_config=True)
    columns = _own_columns(kept)
    config_columns = config_columns_of([record.config for record in kept]) if kept else {}
    config_columns.pop("seed", None)  # a column of compare's own, from config or summary
    if (labels := arms.label_column(kept)) is not None:  # the runs' arms of sweep.cells
        config_columns[arms.LABEL] = labels
    own = sorted(k for k in config_columns if k in OWN_COLUMNS)
    if own:
        warnings.append(f"config keys left out: {', '.join(own)} (compare's "
                        "own columns have these names)")
    keys = sorted(k for k in config_columns if k not in own)
    table = pd.DataFrame({**columns, **{k: config_columns[k] for k in keys}})
    for key in keys:
        column = table[key]  # only a column of Python objects can mix text and numbers
        if column.dtype == object and len({isinstance(v, str) for v in column.dropna()}) > 1:
            table[key] = column.map(_shown).where(column.notna())
    return RunTable(table, keys, warnings)


def _own_columns(kept: list[runs.RunRecord]) -> dict[str, list]:
    """compare's own columns, one value per run: where it is, its status, seed, final and
    best metrics (NaN where a summary lacks one)."""
    summaries = [record.summary for record in kept]
    columns = {
        "run_id": [runs.plain_text(record.path.name) for record in kept],
        "path": [str(record.path) for record in kept],
        "status": [record.status for record in kept],
        "seed": [r.config.get("seed", r.summary.get("seed")) for r in kept],
        "config_hash": [record.config_hash for record in kept],
        "epochs_done": [s.get("epochs_done", 0) for s in summaries],
        "started": [record.started for record in kept],
    }
    for at in ("final", "best"):
        values = [s.get(at) or {} for s in summaries]
        for metric in METRICS:
            columns[f"{at}_{metric}"] = [float(x) if isinstance(x := v.get(metric), int | float)
                                         else math.nan for v in values]
    return columns


_PLAIN = (str, int, float)  # config values format_value leaves as they are (the most)
_MISSING = object()  # a key a run's config lacks: NaN in its column, as pandas makes it


def config_columns_of(configs: list[dict]) -> dict[str, list]:
    """Dotted config key -> one value per config (at least one), as `flatten` and
    `format_value` make them: lists, null and booleans as text, NaN where a config lacks
    the key.

    Built key by key, not config by config: a section equal in every config (most of a
    sweep's) is flattened once. Equal is Python's ==, so a section that differs only
    between 1, 1.0 and true reads as the first config's; the schema gives each key one
    type, so only hand-made configs can hold such. Over 10,000 runs this cut compare's
    rows from 0.9 s to ~0.1 s (benchmarks/compare_speed.py). A loop on a stack of its
    own, as `flatten`: a summary.json nests as deep as JSON lets it."""
    columns: dict[str, list] = {}
    stack = [(configs, "")]  # each config's value at a key (_MISSING: none there)
    while stack:
        values, key = stack.pop()
        for sub, sub_values in _add_columns(values, key, columns):
            stack.append((sub_values, sub))
    return columns


def _add_columns(values: list, key: str, columns: dict[str, list]) -> list[tuple]:
    """The columns at `key` of each config's value there, and the keys beneath it still to
    do with their values: none where every config holds the same section or a value."""
    first = values[0]
    if isinstance(first, dict) and all(v == first for v in values):
        for sub, value in flatten(first, f"{key}." if key else "").items():
            columns[sub] = [_leaf(value)] * len(values)
        return []
    sections = {isinstance(v, dict) for v in values}
    if True not in sections:  # a key of values only, the most: one pass
        columns[key] = [v if type(v) in _PLAIN else _leaf(v) for v in values]
        return []
    dicts = values
    if False in sections:  # a section in some configs, a value or none in others
        leaves = [_MISSING if isinstance(v, dict) else v for v in values]
        if any(v is not _MISSING for v in leaves):
            columns[key] = [_leaf(v) for v in leaves]
        dicts = [v if isinstance(v, dict) else {} for v in values]
    return [(f"{key}.{sub}" if key else sub, [d.get(sub, _MISSING) for d in dicts])
            for sub in dict.fromkeys(k for d in dicts for k in d)]


def _leaf(value):
    if value is _MISSING:
        return math.nan
    return value if type(value) in _PLAIN else format_value(value)


# ---------------------------------------------------------------- grouping


def differing_keys(found: RunTable) -> list[str]:
    """Config keys (seed aside) whose values differ between runs: what a group is.

    A key missing from some runs' config.yaml (a key newer than the bnexp that ran them)
    differs only if the runs that have it disagree."""
    table = found.table
    return [k for k in found.config_keys if table[k].dropna().astype(str).nunique() > 1]


def group_keys(found: RunTable, by: list[str] | None) -> list[str]:
    """--by keys, checked, each once (a key given twice: a pandas traceback); else the
    differing keys (less those an arm's label names); else the name."""
    if by:
        for key in by:
            if key not in found.config_keys:
                raise BadInput(f"--by {key}: not a config key of these runs"
                               f"{did_you_mean(key, found.config_keys)}")
        return list(dict.fromkeys(by))
    return arms.named_by_label(found.table, differing_keys(found)) or ["name"]


def metric_values(table: pd.DataFrame, metric: str, at: str) -> pd.Series:
    check_metric(metric, at)
    return table[f"{at}_{metric}"]


def check_metric(metric: str, at: str) -> None:
    if metric not in METRICS:
        raise BadInput(f"--metric {metric}: expected one of {', '.join(METRICS)}"
                       f"{did_you_mean(metric, METRICS)}")
    if at not in ("final", "best"):
        raise BadInput(f"--at {at}: expected final or best")


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
    """Group minus baseline. x, b: seed (or what pairs two runs, `_pair_keys`) -> value.
    Paired over shared seeds, else Welch.

    Identical differences (std 0) leave the p-value undefined: NaN, without scipy's warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _difference(x, b)


def _difference(x: dict, b: dict) -> dict:
    shared = sorted(set(x) & set(b))
    out = {"test": "", "n_pairs": len(shared), "delta": math.nan, "delta_ci95_low": math.nan,
           "delta_ci95_high": math.nan, "p_value": math.nan}
    if len(shared) >= 2:
        d = np.array([x[s] - b[s] for s in shared])
        mean, std = float(d.mean()), float(d.std(ddof=1))
        half = t_quantile(len(d) - 1) * std / math.sqrt(len(d))
        p = two_sided_p(np.divide(d.mean(), d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1)
        out.update(test="paired", delta=mean, p_value=p)
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
        out.update(test="welch", delta=mean, p_value=p)
    else:
        return out
    out.update(delta_ci95_low=mean - half, delta_ci95_high=mean + half)
    return out


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of Student's t statistic t with df degrees of freedom, as
    scipy.stats' ttest_rel and ttest_ind (Welch) give it: 2 P(T > |t|); 0 where t is
    infinite (a constant nonzero difference), NaN where it is 0/0. From scipy.special:
    importing scipy.stats took 1.5 s of `compare --baseline`'s 7.4 s over 10,000 runs."""
    return float(2 * special.stdtr(df, -abs(t)))


def t_quantile(df: float) -> float:
    """Student's t 97.5% quantile with df degrees of freedom: what scipy.stats.t.ppf
    computes, from scipy.special (scipy.stats takes ~0.5 s to import; only the
    baseline's tests need it)."""
    return float(special.stdtrit(df, 0.975))


def table(found: RunTable, metric: str = "test_acc", at: str = "final",
          by: list[str] | None = None, baseline: str | None = None) -> pd.DataFrame:
    """One row per group of runs that differ only by seed, with counts and statistics."""
    check_metric(metric, at)
    if found.table.empty:
        return pd.DataFrame(columns=["name", *COUNT_COLUMNS, *STAT_COLUMNS])
    keys = group_keys(found, by)
    runs_table = found.table.assign(_value=metric_values(found.table, metric, at))
    runs_table["_pair"] = _pair_keys(found, keys) if baseline else runs_table["seed"]
    rows = []
    for values, group in runs_table.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        status = group["status"].value_counts()
        row = dict(zip(keys, values, strict=True))
        row["n"] = len(group)
        for name in COUNT_COLUMNS[1:]:
            row[name] = int(status.get(name, 0))
        done = group[group["status"] == "completed"]
        row.update(metric=metric, at=at, **summarize(done["_value"]))
        row["_seeds"] = {s: v for s, v in zip(done["_pair"], done["_value"], strict=True)
                         if np.isfinite(v)}
        rows.append(row)
    out = pd.DataFrame(rows)
    if baseline:
        out = _add_baseline(out, keys, baseline)
    return out.drop(columns="_seeds").reset_index(drop=True)


def _pair_keys(found: RunTable, keys: list[str]) -> list[tuple]:
    """What pairs a run with a baseline run: its seed and every differing config key that
    is not a grouping key nor follows from them (arms.determined). The trap: with `--by
    optimizer` over runs that also differ by learning rate, a group holds several runs
    per seed; pairing by seed alone kept one of them at random (the wrong differences)."""
    table = found.table
    rest = [k for k in differing_keys(found) if k not in keys]
    follow = arms.determined(table, keys, rest)
    columns = [table["seed"].tolist()] + [table[k].map(_shown).tolist() for k in rest
                                          if k not in follow]
    return list(zip(*columns, strict=True))


def _add_baseline(out: pd.DataFrame, keys: list[str], baseline: str) -> pd.DataFrame:
    key, sep, raw = baseline.partition("=")
    if not sep:
        raise BadInput(f"--baseline {baseline!r}: expected KEY=VALUE, e.g. model.bn.placement=none")
    if key not in keys:
        raise BadInput(f"--baseline {key}: not one of the grouping keys ({', '.join(keys)})")
    wanted = _parse_value(raw)
    others = [k for k in keys if k != key]
    if not _matches(out[key], wanted).any():
        seen = ", ".join(sorted({_shown(v) for v in out[key]}))
        raise BadInput(f"--baseline {baseline}: no group has {key}={raw} (values: {seen})")
    candidates = out[_matches(out[key], wanted)]
    label = f"{key}={raw}"
    extra = []
    for _, row in out.iterrows():
        match = candidates  # the baseline group that matches the row on every other key
        for other in others:
            match = match[_matches(match[other], row[other])]
        if match.empty:
            extra.append({"baseline": UNLIKE, **difference({}, {})})
        elif match.index[0] == row.name:
            extra.append({"baseline": "(baseline)", **difference({}, {})})
        else:
            extra.append({"baseline": label, **difference(row["_seeds"], match.iloc[0]["_seeds"])})
    return pd.concat([out, pd.DataFrame(extra, index=out.index)[BASELINE_COLUMNS]], axis=1)


ABSENT = "(absent)"


def _shown(value) -> str:
    """A grouping value as text: a key missing from a run's config (NaN, a run older than
    the key) reads "(absent)", apart from a null one (reading both "null", a baseline of
    null took either group for the other); a whole number upcast to float by that NaN
    reads as the integer it was (1.0 -> "1")."""
    if isinstance(value, float):
        if math.isnan(value):
            return ABSENT
        if value.is_integer():
            return str(int(value))
    return str(value)


def _matches(column: pd.Series, value) -> pd.Series:
    """Which rows of a grouping column hold `value` (compared as _shown text)."""
    return column.map(_shown) == _shown(value)


def _parse_value(text: str):
    """The value as the config would hold it (`1e-3`, `true`); text that is not a YAML
    value (`[1`, `!!int x`) is compared as the text itself."""
    try:
        return format_value(parse_yaml(text))
    except (yaml.YAMLError, RecursionError):
        return text


def frame(found: RunTable, metric: str, at: str, by: list[str] | None,
          baseline: str | None, per_run: bool) -> pd.DataFrame:
    """compare's answer: one row per group (`table`), or per_run (`--runs`) one row per
    run (`run_rows`, where a baseline does not apply)."""
    if per_run:
        return run_rows(found, metric, at, by)
    return table(found, metric, at, by, baseline)


def run_rows(found: RunTable, metric: str = "test_acc", at: str = "final",
             by: list[str] | None = None) -> pd.DataFrame:
    """--runs: one row per run: the grouping keys, seed, status, the metric, the folder."""
    check_metric(metric, at)
    if found.table.empty:
        return pd.DataFrame(columns=["seed", "status", metric, "run_id"])
    keys = group_keys(found, by)
    t = found.table
    out = t[keys + ["seed", "status", "epochs_done"]].copy()
    out[metric] = metric_values(t, metric, at)
    out["run_id"] = t["run_id"]
    return out.sort_values(keys + ["seed"], kind="stable").reset_index(drop=True)
