"""`bnexp plot sweep`'s numbers: a metric at the final epoch against a swept setting (the
batch size, the learning rate), per group of the other settings, with its mean and
intervals over seeds at each value: the figure of most BN papers.

The trap: runs that differ in a setting that is neither the swept key nor a grouping
key would be pooled into one point as if they were seeds; as in compare, they get a line
of their own, and a note says so. Runs that are not drawn (diverged, failed, without the
key or the metric) are listed, never dropped silently. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bnexp.analysis import arms
from bnexp.analysis.compare import METRICS, RunTable, differing_keys, group_keys
from bnexp.analysis.series import completed, keyed, summaries
from bnexp.errors import BadInput, did_you_mean

ERROR = "_error"  # test_error: 1 - test_acc
CHOICES = [*METRICS, *(m.replace("_acc", ERROR) for m in METRICS if "_acc" in m)]


@dataclass
class Sweep:
    """Per group, the metric's summary (x, n_used, mean, std, min, max, ci95_low,
    ci95_high) at each value of the swept key x, in x's order (numbers ascending; other
    values as first seen)."""

    x: str
    metric: str
    keys: list[str]  # the grouping keys
    groups: dict  # {group label: frame}
    values: dict  # {group label: {key: value}}, drawn or not: what legends name
    numeric: bool  # x's values are numbers
    left_out: list[dict] = field(default_factory=list)  # {group, x, why, runs}
    notes: list[str] = field(default_factory=list)  # how the runs were grouped


def sweep(found: RunTable, x: str, by: list[str] | None = None,
          metric: str = "test_acc") -> Sweep:
    """The final-epoch `metric` (a metrics.csv column, or NAME_error for 1 - NAME_acc)
    against x. Groups: --by's keys (and any other key that differs beside them and x),
    else every key that differs besides x (an arm's label standing for the keys it
    sets). BadInput where x is no config key or has one value, or where --by names x."""
    table = found.table
    if metric not in CHOICES:
        raise BadInput(f"--metric {metric}: expected one of {', '.join(CHOICES)}"
                       f"{did_you_mean(metric, CHOICES)}")
    if x not in found.config_keys:
        raise BadInput(f"--x {x}: not a config key of these runs"
                       f"{did_you_mean(x, found.config_keys)}")
    if table[x].dropna().astype(str).nunique() < 2:
        raise BadInput(f"--x {x}: every run has one value of it "
                       f"({', '.join(map(str, table[x].dropna().unique()[:1])) or 'none'}); "
                       "nothing to draw against")
    keys, split = _grouping(found, x, by)
    column = f"final_{metric.replace(ERROR, '_acc')}"
    value = table[column] if column in table else pd.Series(np.nan, index=table.index)
    numeric = pd.api.types.is_numeric_dtype(table[x]) and not pd.api.types.is_bool_dtype(table[x])
    order = list(dict.fromkeys(table[x].dropna()))
    runs = table.assign(_value=1 - value if metric.endswith(ERROR) else value)
    if not numeric:
        runs[x] = pd.Categorical(runs[x], categories=order)
    left_out = _left_out(runs, x, keys)
    done = completed(RunTable(runs, found.config_keys))
    values = {label: group_values for label, group_values, _ in keyed(runs, keys)}
    groups = {label: summaries(group[[x, "_value"]], x, "_value") for label, _, group
              in keyed(done[done[x].notna() & np.isfinite(done["_value"])], keys)}
    if not groups:
        raise BadInput(f"--metric {metric}: no completed run here has a final {metric} "
                       "with a value of --x")
    notes = [f"--by {', '.join(dict.fromkeys(by or []))}: the runs also differ by "
             f"{', '.join(split)}: a line for each of its values (runs of other settings are "
             "never pooled)"] if split else []
    return Sweep(x, metric, keys, groups, values, numeric, left_out, notes)


def _grouping(found: RunTable, x: str, by: list[str] | None) -> tuple[list[str], list[str]]:
    """(the grouping keys, the --by keys' split): --by's keys and every other key that
    differs beside x and them (a line for each of its values: runs of other settings are
    never pooled as seeds), a key they determine aside (an arm's keys under its label);
    without --by, every key that differs besides x. BadInput where --by names x."""
    table = found.table
    differ = differing_keys(found)
    if not by:
        return [k for k in arms.named_by_label(table, differ) if k != x], []
    keys = group_keys(found, by)
    if x in keys:
        raise BadInput(f"--by {x}: it is --x; group by another key")
    others = [k for k in differ if k not in (*keys, x)]
    split = [k for k in others if k not in arms.determined(table, [*keys, x], others)]
    kept = arms.named_by_label(table, [*keys, *split])
    split = [k for k in split if k in kept]
    return [*keys, *split], split


def _left_out(runs: pd.DataFrame, x: str, keys: list[str]) -> list[dict]:
    """The runs not drawn, counted per group, x and reason: not completed (diverged,
    failed, interrupted, running), completed without a final value, without x."""
    why = np.where(runs["status"] != "completed", runs["status"].astype(str),
                   np.where(runs[x].isna(), f"without {x}", "without a final value"))
    shown = runs.assign(_why=why)
    shown = shown[(runs["status"] != "completed") | runs[x].isna()
                  | ~np.isfinite(runs["_value"])]
    out = []
    for label, _, group in keyed(shown, keys):
        for (value, reason), rows in group.groupby([x, "_why"], sort=False, dropna=False,
                                                   observed=True):
            out.append({"group": label, "x": value, "why": reason, "runs": len(rows)})
    return out
