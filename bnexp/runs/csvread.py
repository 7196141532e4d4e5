"""Reading a run folder's CSV files (metrics.csv and the diagnostics files) as columns of
the types their readers rely on: the one CSV reader of compare, plot and doctor.

The trap: a CSV file may be torn (a kill mid-write leaves a last line cut short: not a
row), edited by hand, or not bnexp's at all (thousands of columns, an endless file);
it is read as far as it is a run's table, and never past a limit.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from bnexp.runs.files import complete_lines
from bnexp.runs.reader import MAX_NUMBER, read_text
from bnexp.safeopen import open_for_reading

MAX_CSV_BYTES = 64 << 20  # steps.csv of a long run is a few MiB
MAX_CSV_COLUMNS = 1000  # metrics.csv has ~20 columns; a file of more is not bnexp's
# activations.csv of a long run holds ~100,000 rows; each row read costs ~200 bytes of
# memory: 30 million blank lines (30 MB on disk) took 5.8 GB and 72 s
MAX_CSV_ROWS = 1_000_000
MAX_INDEX = 2**53  # an epoch or step: a whole number a float holds exactly

# the columns each CSV file's readers rely on; text columns, index columns, the rest numbers
TABLE_COLUMNS = {"metrics.csv": ("epoch",),
                 "activations.csv": ("step", "layer", "unit", "p15", "p50", "p85"),
                 "drift.csv": ("epoch", "layer", "mean_error", "variance_error"),
                 "steps.csv": ("epoch", "step"),
                 "grad_norms.csv": ("step", "layer", "weight", "grad_norm"),
                 "weight_norms.csv": ("epoch", "layer", "weight", "norm", "effective_lr"),
                 "predictiveness.csv": ("step", "loss_after", "grad_change", "smoothness")}
TEXT_COLUMNS = ("layer", "unit", "weight", "scale_invariant")
INDEX_COLUMNS = ("epoch", "step")


def read_csv(file: Path):
    """A run folder's CSV file as a DataFrame: the one reader of every CSV file compare,
    plot and doctor read. Empty where the file is absent or cannot be read (a folder, a
    link loop, an endless file) or has over MAX_CSV_COLUMNS columns or MAX_CSV_ROWS
    lines (a file that size is not a run's: reading it would take gigabytes). Its
    columns are the header's: text columns as text ("" where missing), index columns
    (epoch, step) as integers, every other column floats (NaN where blank, unreadable,
    not finite or beyond MAX_NUMBER in size). Not rows: a torn last line, a line the csv
    module cannot read, a row whose index is not a whole number from 0 to MAX_INDEX.
    Cells beyond the header are dropped."""
    import pandas as pd

    columns = _csv_columns(file)
    kinds = {name: object if name in TEXT_COLUMNS else "int64" if name in INDEX_COLUMNS
             else float for name in columns}  # made in their type: no astype per column
    return pd.DataFrame({name: pd.Series(values, dtype=kinds[name])
                         for name, values in columns.items()}, columns=list(columns))


def _csv_columns(file: Path) -> dict[str, list]:
    """read_csv's table as {column: its values} in plain Python (pandas' conversions
    cost ~1 ms a column, 27 ms for a run's metrics.csv, which `plot runs` over 300 runs
    read 1,200 times); {} where read_csv is empty."""
    try:
        text = complete_lines(read_text(file, MAX_CSV_BYTES))
    except (OSError, ValueError):
        return {}
    if text.count("\n") > MAX_CSV_ROWS + 1:  # counted at C speed, before any row is made
        return {}
    names, *lines = list(_csv_lines(text)) or [[]]
    if len(names) > MAX_CSV_COLUMNS:  # each column costs ~0.5 ms: 50,000 took 36 s
        return {}
    padding = [None] * len(names)  # a short row: the rest missing; a long one: cut
    rows = [(line + padding)[: len(names)] for line in lines]
    columns = {}  # a duplicated name: the last column of that name, where it stands
    for i, name in enumerate(names):
        cells = [row[i] for row in rows]
        columns.pop(name, None)
        columns[name] = ([c or "" for c in cells] if name in TEXT_COLUMNS
                         else _numbers(cells))
    keep = [all(_is_index(columns[c][r]) for c in INDEX_COLUMNS if c in columns)
            for r in range(len(rows))]
    return {name: [int(v) if name in INDEX_COLUMNS else v
                   for v, k in zip(values, keep, strict=True) if k]
            for name, values in columns.items()}


def _numbers(cells: list) -> list[float]:
    """[_cell_number(cell) for cell in cells], at C speed where every cell is a number
    numpy and float() read alike (ASCII, no "_"): cell by cell, plot runs spent 2.5 s on a
    metrics.csv of 200,000 epochs."""
    if None not in cells:
        joined = "".join(cells)
        if "_" not in joined and joined.isascii():
            try:
                values = np.array(cells, dtype=float)
            except ValueError:  # a blank or unreadable cell: each cell on its own
                return [_cell_number(c) for c in cells]
            values[~(np.abs(values) <= MAX_NUMBER)] = math.nan  # NaN fails too
            return values.tolist()
    return [_cell_number(c) for c in cells]


def _cell_number(cell: str | None) -> float:
    """A CSV cell as a float: NaN where blank, not a number (as pandas reads numbers:
    no `1_000`, no digits of other scripts, which float() takes), not finite or beyond
    MAX_NUMBER in size."""
    if not cell or "_" in cell or not cell.isascii():
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        return math.nan
    return value if abs(value) <= MAX_NUMBER else math.nan  # NaN fails too


def _is_index(value: float) -> bool:
    """An epoch or step: a whole number from 0 to MAX_INDEX."""
    return 0 <= value <= MAX_INDEX and value % 1 == 0


def _csv_lines(text: str):
    """The lines of a CSV text as lists of cells, a line the csv module refuses (a field
    over its limit, a stray quote or carriage return) left out."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:  # each next() takes at least one line: this ends
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv rows as dicts of floats (epoch as int, blanks and unreadable cells as
    NaN), read as `read_csv` reads it; [] where the file is absent, unreadable or has no
    epoch. Straight from the columns: a DataFrame's to_dict cost doctor 2 ms a run."""
    columns = _csv_columns(path / "metrics.csv")
    if "epoch" not in columns:
        return []
    return [dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)]


def read_table(path: Path, name: str):
    """A run folder's CSV file (a diagnostics file) as a DataFrame, read by `read_csv`;
    empty where absent, unreadable or not that file (a column its readers need is
    missing). `unit` stays text ("all" beside unit numbers)."""
    frame = read_csv(path / name)
    if not set(TABLE_COLUMNS.get(name, ())) <= set(frame.columns):
        return frame.iloc[0:0, 0:0]
    return frame


def torn(file: Path) -> bool:
    """True if the file ends in a line cut short (a kill in the middle of a write)."""
    try:
        with open_for_reading(file, regular=True) as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:
        return False


def torn_metrics(path: Path) -> bool:
    return torn(path / "metrics.csv")
