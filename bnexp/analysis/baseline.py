"""compare --baseline KEY=VALUE: each group against the baseline group alike in every
other grouping key (a paired t-test over shared seeds, else Welch's; bnexp.analysis.stats),
an effect size, Holm-adjusted p-values over the table's comparisons, and a warning where
a test rests on few seeds. Grouping values compared as text (`shown`). No TensorFlow.
"""

from __future__ import annotations

import math

import pandas as pd
import yaml

from bnexp.analysis.stats import MIN_N, difference, holm, too_few
from bnexp.errors import BadInput
from bnexp.yamltext import format_value, parse_yaml

UNLIKE = "(none alike)"  # no baseline group has this group's other settings: no delta, no p
BASELINE_COLUMNS = ["baseline", "test", "n_pairs", "n_baseline", "delta", "delta_ci95_low",
                    "delta_ci95_high", "p_value", "p_holm", "effect", "effect_size",
                    "effect_ci95_low", "effect_ci95_high"]


def add_baseline(out: pd.DataFrame, keys: list[str], baseline: str) -> pd.DataFrame:
    key, sep, raw = baseline.partition("=")
    if not sep:
        raise BadInput(f"--baseline {baseline!r}: expected KEY=VALUE, e.g. model.bn.placement=none")
    if key not in keys:
        raise BadInput(f"--baseline {key}: not one of the grouping keys ({', '.join(keys)})")
    wanted = parse_value(raw)
    others = [k for k in keys if k != key]
    if not matches(out[key], wanted).any():
        seen = ", ".join(sorted({shown(v) for v in out[key]}))
        raise BadInput(f"--baseline {baseline}: no group has {key}={raw} (values: {seen})")
    candidates = out[matches(out[key], wanted)]
    label = f"{key}={raw}"
    extra = []
    for _, row in out.iterrows():
        match = candidates  # the baseline group that matches the row on every other key
        for other in others:
            match = match[matches(match[other], row[other])]
        if match.empty:
            extra.append({"baseline": UNLIKE, **difference({}, {})})
        elif match.index[0] == row.name:
            extra.append({"baseline": "(baseline)", **difference({}, {})})
        else:
            extra.append({"baseline": label, **difference(row["_seeds"], match.iloc[0]["_seeds"])})
    extra = pd.DataFrame(extra, index=out.index)
    extra["p_holm"] = holm(extra["p_value"])  # over every comparison the table makes
    return pd.concat([out, extra[BASELINE_COLUMNS]], axis=1)


def few_seeds_note(out: pd.DataFrame) -> list[str]:
    """A line where a test ran on fewer than MIN_N pairs (paired) or runs a group (Welch):
    how many, on how few, and what that means."""
    tested = list(zip(out["test"], out["n_pairs"], out["n_used"], out["n_baseline"],
                      strict=True))
    few = [(t, n, u, b) for t, n, u, b in tested if too_few(t, n, u, b)]
    if not few:
        return []
    paired = sorted({n for t, n, _, _ in few if t == "paired"})
    welch = sorted({min(u, b) for t, _, u, b in few if t == "welch"})
    sizes = ([f"paired on {_listed(paired)} pairs"] if paired else []) + (
        [f"Welch on {_listed(welch)} runs a group"] if welch else [])
    return [f"{len(few)} of {sum(t != '' for t, *_ in tested)} tests ran on fewer than "
            f"{MIN_N} seeds ({'; '.join(sizes)}): so few cannot check the normality a t-test "
            "assumes, and p and the intervals swing from one set of seeds to the next; read "
            "them as rough (docs/compare.md#what-a-p-value-from-3-seeds-can-tell)"]


def _listed(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:-1])) + (" or " if len(numbers) > 1 else "") + str(
        numbers[-1])


ABSENT = "(absent)"


def shown(value) -> str:
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


def matches(column: pd.Series, value) -> pd.Series:
    """Which rows of a grouping column hold `value` (compared as `shown` text)."""
    return column.map(shown) == shown(value)


def parse_value(text: str):
    """The value as the config would hold it (`1e-3`, `true`); text that is not a YAML
    value (`[1`, `!!int x`) is compared as the text itself."""
    try:
        return format_value(parse_yaml(text))
    except (yaml.YAMLError, RecursionError):
        return text
