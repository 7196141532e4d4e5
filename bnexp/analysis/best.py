"""compare --at best: each run's epoch chosen on a validation metric (--select val_loss or
val_acc), and the metric reported at that epoch. The epoch is never chosen on the test
set: picking each run's best test accuracy over epochs flatters by construction.

summary.json's best (schema 2) records the epoch chosen on val_acc (selected_by): read
where it was chosen as asked; else (another --select, or a run folder written before
schema 2, whose best held each metric's own best over epochs) chosen again from
metrics.csv. No TensorFlow here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bnexp import runs
from bnexp.errors import BadInput
from bnexp.runs.record import finite


def check_select(at: str, select: str | None) -> None:
    """--select: val_loss or val_acc, and only with --at best."""
    if select is None:
        return
    if select not in runs.SELECTORS:
        raise BadInput(f"--select {select}: expected {' or '.join(runs.SELECTORS)} (the "
                       "epoch is chosen on validation data, never on the test set)")
    if at != "best":
        raise BadInput(f"--select {select}: only with --at best (the final epoch is chosen "
                       "by nothing)")


def at_best(table: pd.DataFrame, metric: str, select: str) -> pd.DataFrame:
    """Per run (table's index): `value`, the metric at the epoch with the best `select`
    (the first of equals), and that `epoch` (None where no epoch has a `select` value).

    BadInput where a completed run has no `select` value in any epoch (trained without a
    validation split): its epoch could only be chosen on the test set."""
    recorded = _recorded(table, select)
    column = f"best_{metric}"
    value = (table[column] if column in table else pd.Series(math.nan, index=table.index))
    value = value.where(recorded).astype(float)
    epochs = table["best_epoch"] if "best_epoch" in table else pd.Series(None, index=table.index)
    epoch = [int(e) if ok and finite(e) else None
             for ok, e in zip(recorded, epochs, strict=True)]
    unselected = []
    for position, index in enumerate(table.index):
        if recorded.iloc[position]:
            continue
        row = runs.selected_row(runs.read_metrics(Path(table.at[index, "path"])), select)
        if row is None:
            if table.at[index, "status"] == "completed":
                unselected.append(str(table.at[index, "run_id"]))
            continue
        found = row.get(metric)
        value.iloc[position] = float(found) if finite(found) else math.nan
        epoch[position] = int(row["epoch"])
    if unselected:
        raise BadInput(_no_validation(unselected, select))
    return pd.DataFrame({"value": value, "epoch": pd.Series(epoch, index=table.index,
                                                            dtype=object)})


def _recorded(table: pd.DataFrame, select: str) -> pd.Series:
    """Which runs' summary.json recorded their best as chosen by `select` (schema 2)."""
    if "best_selected_by" not in table:
        return pd.Series(False, index=table.index)
    return table["best_selected_by"] == select


def _no_validation(run_ids: list[str], select: str) -> str:
    many = len(run_ids) != 1
    return (f"--at best: {len(run_ids)} completed run{'s' * many} ha{'ve' if many else 's'} "
            f"no {select} in any epoch ({run_ids[0]}{', ...' * many}: trained without a "
            "validation split), so no epoch can be chosen but on the test set; use --at "
            "final, or train with data.validation_size > 0")
