"""The order of compare's rows (numbers as numbers, text in natural order, absent values
last) and the columns --columns keeps. No TensorFlow.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from bnexp.errors import BadInput, did_you_mean


def in_order(out: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The rows sorted by the keys' values, stably: numbers (and text that reads as one)
    as numbers, then text in natural order (resnet8 before resnet14), then values absent
    (NaN); batch sizes 2, 4, 8, 32, never 2, 32, 4, 8."""
    ranks = {}
    for key in keys:
        order = [_order_key(v) for v in out[key]]
        rank = {k: i for i, k in enumerate(sorted(set(order)))}
        ranks[key] = [rank[k] for k in order]
    if not ranks:
        return out
    ranked = pd.DataFrame(ranks, index=out.index).sort_values(keys, kind="stable")
    return out.loc[ranked.index]


def _order_key(value) -> tuple:
    """(0, the number) for a number or text that reads as a finite one; (1, its parts) for
    other text, digit runs compared as numbers; (2,) for an absent value (NaN)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return (2, 0.0, ()) if math.isnan(value) else (0, float(value), ())
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return (0, number, ())
    return (1, 0.0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                          for p in re.split(r"(\d+)", text)))


def chosen_columns(out: pd.DataFrame, columns: list[str]) -> list[str]:
    """--columns: the names given (comma-separated or one an option), each once; BadInput
    naming one the table does not have, with the columns it has."""
    names = list(dict.fromkeys(c.strip() for given in columns for c in given.split(",")
                               if c.strip()))
    for name in names:
        if name not in out.columns:
            have = [str(c) for c in out.columns]
            raise BadInput(f"--columns {name}: not a column of this table (columns: "
                           f"{', '.join(have)}){did_you_mean(name, have)}")
    if not names:
        raise BadInput("--columns: no column named")
    return names
