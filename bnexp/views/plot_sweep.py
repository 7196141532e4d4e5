"""`bnexp plot sweep`'s figure: a metric at the final epoch against a swept setting, one
line per group, each point the mean over seeds with its interval as error bars; a log
axis where the values span a decade or more (batch sizes 2 to 256, learning rates).
The numbers: bnexp.analysis.sweep_points."""

from __future__ import annotations

import math

import numpy as np

from bnexp.views.plot_parts import (
    LINESTYLES,
    MARKERS,
    axis,
    counts,
    interval,
    legend,
    legend_height,
    shown,
    subplots,
    title,
)
from bnexp.views.plot_words import (
    VALUE_WORDS,
    axis_words,
    band_note,
    key_words,
    shown_value,
    value_words,
)

MAX_TICKS = 12  # up to this many values: a tick at each, labelled as the config wrote it
MAX_NOTES = 3  # left-out points named in the title; the rest counted


def figure_sweep(points, names: dict | None = None, band: str = "ci"):
    """points: a sweep_points.Sweep; names: {group label: its legend name}."""
    x, metric = points.x, points.metric
    names = {label: (names or {}).get(label, label) for label in points.values}
    short = shown(names[label] for label in points.groups)
    labels = list(points.groups)
    fig, axes = subplots(1, 1, figsize=(6.4, 4.4 + legend_height(labels, 2)))
    ax = axes[0][0]
    every = _values(points)
    log = points.numeric and min(every) > 0 and max(every) / min(every) >= 10
    ns = [int(n) for f in points.groups.values() for n in f["n_used"]]
    usual = max(sorted(set(ns), reverse=True), key=ns.count)  # the title's n
    sizes = counts(points.groups)
    for i, (label, frame) in enumerate(points.groups.items()):
        where = _positions(frame[x], every, points.numeric)
        where = _dodge(where, i, len(labels), every, log, points.numeric)
        mean = frame["mean"].to_numpy()
        below, above = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
        edges = interval(frame, band)  # none at a point of one run
        if edges is not None:
            rows, low, high = edges
            inside = frame.index.isin(rows.index)
            below[inside] = (rows["mean"] - low).to_numpy()
            above[inside] = (high - rows["mean"]).to_numpy()
        ax.errorbar(where, mean, yerr=None if edges is None else np.vstack([below, above]),
                    color=f"C{i % 10}", linestyle=LINESTYLES[i % len(LINESTYLES)],
                    marker=MARKERS[i % len(MARKERS)], markersize=6, markerfacecolor="none",
                    capsize=3, elinewidth=1, linewidth=1.4,
                    label=short[names[label]] + sizes[label])
        for at, y, n in zip(where, mean, frame["n_used"], strict=True):
            if n != usual:  # a point of fewer seeds says so: one run has no bar at all
                ax.annotate(f"n={int(n)}", (at, y), textcoords="offset points", xytext=(6, 0),
                            va="center", fontsize=7, color="0.25",
                            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    _ticks(ax, every, points, log)
    words = axis_words(x)
    if log:
        words = f"{words[:-1]}; log scale)" if words.endswith(")") else f"{words} (log scale)"
    axis(ax, words, axis_words(metric), integer_x=False)
    heading = f"{axis_words(metric)} at the final epoch against {key_words(x)}"
    title(fig, "\n".join([heading, band_note(band, ns, "bars"), *_notes(points, names)]))
    if labels != ["all runs"]:  # one group of every run: nothing to tell apart
        legend(fig, [ax], ncols=4)
    return fig


def _values(points) -> list:
    """x's values over every group: numbers ascending, else the categories' order."""
    frames = list(points.groups.values())
    if points.numeric:
        return sorted({float(v) for f in frames for v in f[points.x]})
    categories = frames[0][points.x].cat.categories
    seen = {v for f in frames for v in f[points.x]}
    return [v for v in categories if v in seen]


def _positions(column, every: list, numeric: bool) -> np.ndarray:
    if numeric:
        return column.to_numpy(dtype=float)
    return np.array([every.index(v) for v in column], dtype=float)


def _dodge(where: np.ndarray, i: int, count: int, every: list, log: bool,
           numeric: bool) -> np.ndarray:
    """Each group's points shifted a little sideways, so that error bars at one x do not
    hide one another (the ticks stay at the values)."""
    shift = i - (count - 1) / 2
    if count < 2:
        return where
    if log:
        decades = math.log10(max(every) / min(every))
        return where * 10 ** (0.012 * decades * shift)
    span = (max(every) - min(every)) if numeric else len(every) - 1
    return where + 0.012 * (span or 1) * shift


def _ticks(ax, every: list, points, log: bool) -> None:
    """A tick at each value where there are few (as the config wrote them: 0.001, 128),
    else matplotlib's; categories by their words."""
    import matplotlib.ticker

    if log:
        ax.set_xscale("log")
    if not points.numeric:
        words = VALUE_WORDS.get(points.x, {})
        ax.set_xticks(range(len(every)), [words.get(str(v), shown_value(v)) for v in every])
        ax.set_xlim(-0.5, len(every) - 0.5)
    elif len(every) <= MAX_TICKS:
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(every))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter(
            [f"{v:g}" for v in every]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def left_out(points, names: dict) -> list[str]:
    """The runs not drawn, one line per group, value and reason:
    'BN before at learning_rate=1: 3 runs diverged'."""
    lines = []
    for row in points.left_out:
        where = "" if _missing(row["x"]) else f" at {value_words(points.x, row['x'])}"
        runs = f"{row['runs']} run{'s' * (row['runs'] != 1)}"
        lines.append(f"{names.get(row['group'], row['group'])}{where}: {runs} {row['why']}")
    return lines


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _notes(points, names: dict) -> list[str]:
    """The title's line of left-out runs: the first MAX_NOTES, the rest counted."""
    lines = left_out(points, names)
    if not lines:
        return []
    more = f" and {len(lines) - MAX_NOTES} more" if len(lines) > MAX_NOTES else ""
    return [f"not drawn: {'; '.join(lines[:MAX_NOTES])}{more}"]
