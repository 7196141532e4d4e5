"""Run folders -> one DataFrame of runs -> one row per group of runs that differ only by seed.

Statistics are over seeds (bnexp.analysis.stats): mean, sample std, min, max and a 95%
Student-t confidence interval of the mean. Only completed runs enter them; diverged,
failed, interrupted and running runs are counted in their own columns. A group differs
from another in its grouping keys only: with --by, runs that also differ in another
setting are split into rows of their own (that key a column), never pooled. With a
baseline, each group is compared with the baseline group that matches it in every other
key: a paired t-test over the seeds both ran (the sweep's paired design), or Welch's
t-test where fewer than two seeds are shared; an effect size and Holm-adjusted p-values
beside. --at best reports each run's metric at the epoch chosen on validation
(bnexp.analysis.best).

No TensorFlow here: compare must answer in a blink over a thousand runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bnexp import runs
from bnexp.analysis import arms, best
from bnexp.analysis.baseline import (  # noqa: F401 - compare's names for the table's parts
    ABSENT,
    BASELINE_COLUMNS,
    UNLIKE,
    add_baseline,
    few_seeds_note,
)
from bnexp.analysis.baseline import shown as _shown
from bnexp.analysis.ordering import chosen_columns, in_order
from bnexp.analysis.stats import difference, summarize  # noqa: F401 - compare's statistics
from bnexp.errors import BadInput, did_you_mean
from bnexp.runs import evals
from bnexp.yamltext import flatten, format_value

METRICS = runs.EPOCH_COLUMNS[1:]
COUNT_COLUMNS = ["n", "completed", "diverged", "failed", "interrupted", "running"]
STAT_COLUMNS = ["metric", "at", "selected_by", "n_used", "mean", "std", "min", "max",
                "ci95_low", "ci95_high"]
# the columns compare and plot make of their own: no config key may take one of these names
OWN_COLUMNS = {"run_id", "path", "status", "seed", "config_hash", "epochs_done", "started",
               "group", "epoch", "best_epoch", "best_selected_by", "_value", "_seeds",
               *COUNT_COLUMNS, *STAT_COLUMNS, *BASELINE_COLUMNS, *METRICS,
               *(f"{at}_{m}" for at in ("final", "best") for m in METRICS)}


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
    chosen = [s["best"] if _chosen_on_validation(s) else {} for s in summaries]
    columns["best_selected_by"] = [v.get("selected_by", math.nan) for v in chosen]
    for at, values in (("final", [s.get("final") or {} for s in summaries]), ("best", chosen)):
        for metric in METRICS if at == "final" else ["epoch", *METRICS]:
            columns[f"{at}_{metric}"] = [float(x) if isinstance(x := v.get(metric), int | float)
                                         else math.nan for v in values]
    return columns


def _chosen_on_validation(summary: dict) -> bool:
    """Whether summary.json's best is one epoch chosen on validation (schema 2, with its
    selected_by); an older best, each metric's own best over epochs (the test metric's
    chosen on the test set), is not read: compare --at best chooses again (best.py)."""
    schema, chosen = summary.get("schema"), summary.get("best")
    return (isinstance(schema, int) and schema >= runs.SCHEMA and isinstance(chosen, dict)
            and isinstance(chosen.get("selected_by"), str))


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


def compare_keys(found: RunTable, by: list[str] | None) -> list[str]:
    """What compare's rows are grouped by: `group_keys`, and with --by every other key
    whose values differ within a --by group, so that a group's runs differ only by seed:
    `--by model.bn.placement` over runs that also differ by learning rate is one row per
    placement and rate, never the rates pooled. Not a key that follows from the groups
    (an arm's keys under --by label)."""
    keys = group_keys(found, by)
    if not by:
        return keys
    rest = [k for k in differing_keys(found) if k not in keys]
    split = [k for k in rest if k not in arms.determined(found.table, keys, rest)]
    kept = arms.named_by_label(found.table, keys + split)
    return keys + [k for k in split if k in kept]


def _split_note(by: list[str] | None, keys: list[str]) -> list[str]:
    split = keys[len(dict.fromkeys(by or [])):] if by else []
    if not split:
        return []
    return [f"--by {', '.join(dict.fromkeys(by))}: the runs also differ by {', '.join(split)}: "
            "a row for each of its values (runs of other settings are never pooled)"]


def metric_values(table: pd.DataFrame, metric: str, at: str,
                  select: str | None = None) -> pd.Series:
    """Each run's metric at its final epoch, or at the epoch chosen on `select` (default:
    the validation counterpart of the metric); an evaluation's (test_acc@SHIFT/STATS) from
    the runs' eval.csv, what is missing said in the Series' attrs["warnings"]."""
    check_metric(metric, at, select, evals_too=True)
    evaluation = evals.parse_metric(metric)
    if evaluation is not None:
        return plausible(table, metric, eval_values(table, evaluation))
    if at == "final":
        return plausible(table, metric, table[f"final_{metric}"])
    return plausible(table, metric,
                     best.at_best(table, metric, select or runs.selector_for(metric))["value"])


def plausible(table: pd.DataFrame, metric: str, values: pd.Series) -> pd.Series:
    """values without the accuracies outside [0, 1] (a hand-edited or foreign file's: no
    accuracy bnexp wrote), left out of the statistics with a warning naming a run."""
    notes = list(values.attrs.get("warnings", []))
    if "_acc" in metric.split("@")[0]:
        bad = values.notna() & ((values < 0) | (values > 1)) & (table["status"] == "completed")
        if bad.any():
            first = bad.idxmax()
            notes.append(f"{metric}: {int(bad.sum())} completed run(s) hold an accuracy "
                         f"outside [0, 1] ({table.loc[first, 'run_id']}: "
                         f"{values[first]:g}): not one bnexp wrote; left out of the "
                         "statistics")
            values = values.mask(bad)
    values.attrs["warnings"] = notes
    return values


def eval_values(table: pd.DataFrame, metric: evals.EvalMetric) -> pd.Series:
    """Each run's evaluation `metric` from its eval.csv (NaN where it has none); a warning
    names the completed runs that lack it, or hold it only of an earlier checkpoint."""
    sizes = table["data.batch_size"] if "data.batch_size" in table else [None] * len(table)
    found = [metric.value(evals.read(Path(path)), size, done) for path, size, done
             in zip(table["path"], sizes, table["epochs_done"], strict=True)]
    values = pd.Series([v for v, _ in found], index=table.index, dtype=float)
    notes = []
    for why, words in (("missing", "no such evaluation in eval.csv"),
                       ("stale", "it only for an earlier epoch's checkpoint (trained on since)")):
        ids = [run_id for run_id, status, (_, reason) in
               zip(table["run_id"], table["status"], found, strict=True)
               if reason == why and status == "completed"]
        if ids:
            notes.append(f"{metric.text}: {len(ids)} completed run{'s' * (len(ids) != 1)} "
                         f"ha{'ve' if len(ids) != 1 else 's'} {words} ({ids[0]}"
                         f"{', ...' * (len(ids) > 1)}): left out of the statistics; "
                         f"`{metric.command()}` evaluates a run")
    values.attrs["warnings"] = notes
    return values


def check_metric(metric: str, at: str, select: str | None = None,
                 evals_too: bool = False) -> None:
    """BadInput unless `metric` is a metrics.csv column (or, evals_too, an evaluation's
    test_acc@SHIFT/STATS, which has no epochs: --at final only), `at` final or best."""
    evaluation = evals.parse_metric(metric)
    if evaluation is not None:
        if not evals_too:
            raise BadInput(f"--metric {metric}: an evaluation of the finished run "
                           "(eval.csv, `bnexp eval`) has no value per epoch to draw")
        if at != "final":
            raise BadInput(f"--at {at}: --metric {metric} is an evaluation of the run's "
                           "last checkpoint (eval.csv), no epoch to choose: use --at final")
        best.check_select(at, select)
        return
    if metric not in METRICS:
        raise BadInput(f"--metric {metric}: expected one of {', '.join(METRICS)}"
                       f"{did_you_mean(metric, METRICS)}")
    if at not in ("final", "best"):
        raise BadInput(f"--at {at}: expected final or best")
    best.check_select(at, select)


def table(found: RunTable, metric: str = "test_acc", at: str = "final",
          by: list[str] | None = None, baseline: str | None = None,
          select: str | None = None) -> pd.DataFrame:
    """One row per group of runs that differ only by seed, with counts and statistics, in
    the order of the grouping keys' values (numbers as numbers). What a reader should
    know beside it (a --by split, tests on few seeds) is in `.attrs["warnings"]`."""
    check_metric(metric, at, select, evals_too=True)
    if found.table.empty:
        return pd.DataFrame(columns=["name", *COUNT_COLUMNS, *STAT_COLUMNS])
    keys = compare_keys(found, by)
    measured = metric_values(found.table, metric, at, select)
    runs_table = found.table.assign(_value=measured)
    runs_table["_pair"] = _pair_keys(found, keys) if baseline else runs_table["seed"]
    chosen_by = (select or runs.selector_for(metric)) if at == "best" else ""
    rows = []
    for values, group in runs_table.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        status = group["status"].value_counts()
        row = dict(zip(keys, values, strict=True))
        row["n"] = len(group)
        for name in COUNT_COLUMNS[1:]:
            row[name] = int(status.get(name, 0))
        done = group[group["status"] == "completed"]
        row.update(metric=metric, at=at, selected_by=chosen_by, **summarize(done["_value"]))
        row["_seeds"] = {s: v for s, v in zip(done["_pair"], done["_value"], strict=True)
                         if np.isfinite(v)}
        rows.append(row)
    out = in_order(pd.DataFrame(rows), keys)
    notes = _split_note(by, keys) + measured.attrs.get("warnings", [])
    if baseline:
        out = add_baseline(out, keys, baseline)
        notes += few_seeds_note(out)
    out = out.drop(columns="_seeds").reset_index(drop=True)
    out.attrs["warnings"] = notes
    return out


def _pair_keys(found: RunTable, keys: list[str]) -> list[tuple]:
    """What pairs a run with a baseline run: its seed and every differing config key that
    is not a grouping key nor follows from them (arms.determined). The trap: a group that
    held several runs per seed (`--by optimizer` over runs that also differ by learning
    rate, before compare_keys split them) paired by seed alone kept one of them at random
    (the wrong differences); a guard now, where compare_keys leaves a key out."""
    table = found.table
    rest = [k for k in differing_keys(found) if k not in keys]
    follow = arms.determined(table, keys, rest)
    columns = [table["seed"].tolist()] + [table[k].map(_shown).tolist() for k in rest
                                          if k not in follow]
    return list(zip(*columns, strict=True))


def frame(found: RunTable, metric: str, at: str, by: list[str] | None,
          baseline: str | None, per_run: bool, *, select: str | None = None,
          columns: list[str] | None = None) -> pd.DataFrame:
    """compare's answer: one row per group (`table`), or per_run (`--runs`) one row per
    run (`run_rows`, where a baseline does not apply); only `columns` where given (each
    item one name or several, comma-separated), in their order."""
    out = (run_rows(found, metric, at, by, select) if per_run
           else table(found, metric, at, by, baseline, select))
    notes = out.attrs.get("warnings", [])
    if columns:
        out = out[chosen_columns(out, columns)]
    out.attrs["warnings"] = notes
    return out


def run_rows(found: RunTable, metric: str = "test_acc", at: str = "final",
             by: list[str] | None = None, select: str | None = None) -> pd.DataFrame:
    """--runs: one row per run: the grouping keys, seed, status, the metric (with --at
    best, the epoch chosen after it), the folder."""
    check_metric(metric, at, select, evals_too=True)
    if found.table.empty:
        return pd.DataFrame(columns=["seed", "status", metric, "run_id"])
    keys = compare_keys(found, by)
    t = found.table
    out = t[keys + ["seed", "status", "epochs_done"]].copy()
    notes = []
    if at == "best":
        chosen = best.at_best(t, metric, select or runs.selector_for(metric))
        out[metric], out["epoch"] = chosen["value"], chosen["epoch"]
    else:
        values = metric_values(t, metric, at)
        out[metric] = values
        notes = values.attrs.get("warnings", [])
    out["run_id"] = t["run_id"]
    out = in_order(out, keys + ["seed"]).reset_index(drop=True)
    out.attrs["warnings"] = _split_note(by, keys) + notes
    return out


