"""Sweeps of arms in compare: the `label` column (each run's arm of sweep.cells, from
summary.json's cell) and the keys a grouping determines (an arm's keys, under its label).

A key that follows from the groups neither splits them by default nor pairs runs: the
adam arm's runs all have optimizer.name adam and the sgd arm's sgd, so pairing on it
found no pair at all between the two arms, and grouping by it beside the label sent
`--baseline label=adam` looking for an adam group with optimizer.name sgd.
No TensorFlow here.
"""

from __future__ import annotations

import math

import pandas as pd

from bnexp.runs.record import RunRecord

LABEL = "label"  # compare's column of arm labels (bnexp.config.cells.LABEL)


def label_column(records: list[RunRecord]) -> list | None:
    """Each run's arm label (NaN for a run without one), or None where no run has one:
    then compare has no label column, as before arms existed."""
    labels = [record.label for record in records]
    if all(label is None for label in labels):
        return None
    return [math.nan if label is None else label for label in labels]


def determined(table: pd.DataFrame, keys: list[str], candidates: list[str]) -> list[str]:
    """Of `candidates`, the keys with one value in every group of `keys` (a key absent
    from a run, NaN, counting as a value): they follow from the grouping."""
    if not candidates:
        return []
    groups = table.groupby(keys, dropna=False, sort=False)[candidates]
    counts = groups.nunique(dropna=False)
    return [key for key in candidates if (counts[key] <= 1).all()]


def named_by_label(table: pd.DataFrame, keys: list[str]) -> list[str]:
    """The differing keys compare groups by without --by: with the label among them, less
    the keys the label names (they differ between arms and follow from the label, runs
    without a label included). A key that differs only beside the arms (the name of a
    run without any) still groups."""
    if LABEL not in keys:
        return keys
    labelled = table[table[LABEL].notna()]
    varied = [key for key in keys if key != LABEL and labelled[key].nunique(dropna=False) > 1]
    follow = determined(table, [LABEL], varied)
    return [key for key in keys if key not in follow]
