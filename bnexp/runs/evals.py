"""A run folder's eval.csv: what `bnexp eval` measured of the run's checkpoint after
training (a row per evaluation, appended), and compare's metrics read from it,
`test_acc@SHIFT/STATS` and `test_loss@SHIFT/STATS`. No TensorFlow.

SHIFT is `clean` (the run's own test set as it is), or the shifts' label (`noise=80`,
`rotate=90+noise=80`: bnexp.shifts), `data=<folder name>` for a --data test set (with
shifts after a `+`); STATS is `population`, `adapt`, `batch` (at the run's own
data.batch_size) or `batch=N`.

The trap: two `bnexp eval` of one run at once. A row is appended under an exclusive
lock on the file, in one write, a torn last line (a kill mid-write) cut off first, so
rows never interleave nor glue onto a torn one, and the header is written once.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bnexp import shifts
from bnexp.errors import BadInput, did_you_mean
from bnexp.runs.files import complete_lines, csv_cell
from bnexp.runs.reader import read_text

FILENAME = "eval.csv"
COLUMNS = ["evaluated_at", "epoch", "data", "shift", "stats", "batch_size", "examples",
           "loss", "acc"]
TEXT = ("evaluated_at", "data", "shift", "stats")
STATS = ("population", "batch", "adapt")
OWN_TEST = "test"  # the data column for the run's own test set
CLEAN = "clean"  # a metric's SHIFT for the run's own test set, unshifted
NAMES = {"test_acc": "acc", "test_loss": "loss"}  # a metric's name -> eval.csv's column
MAX_BYTES = 16 << 20


def condition(data: str, shift: str) -> str:
    """A row's SHIFT as metric names write it: `data=<folder name>` for another test set,
    then the shifts, joined by "+"; `clean` for neither."""
    parts = [] if data == OWN_TEST else [f"data={Path(data).name}"]
    parts += [] if shift in (shifts.NO_SHIFT, "") else [shift]
    return "+".join(parts) or CLEAN


# ---------------------------------------------------------------- reading


def read(folder: Path) -> list[dict]:
    """The rows of folder's eval.csv, in file order: text columns as text, the others as
    numbers (NaN where blank or unreadable; epoch, batch_size and examples whole numbers or
    None). [] where there is none or it cannot be read; a torn last line and a row of
    another header (a hand-edited file) are no rows."""
    try:
        text = complete_lines(read_text(Path(folder) / FILENAME, MAX_BYTES))
    except (OSError, ValueError):
        return []
    rows = []
    try:
        for raw in csv.DictReader(io.StringIO(text, newline="")):
            if raw.get("stats") in STATS:
                rows.append({c: (raw.get(c) or "") if c in TEXT else _number(raw.get(c), c)
                             for c in COLUMNS})
    except csv.Error:  # a field past the csv module's limit: not bnexp's; the rows before
        pass
    return rows


def _number(cell: str | None, column: str):
    try:
        value = float(cell or "nan")
    except ValueError:
        value = math.nan
    if column in ("epoch", "batch_size", "examples"):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    return value if math.isfinite(value) else math.nan


# ---------------------------------------------------------------- writing


def append(folder: Path, row: dict) -> None:
    """One row (COLUMNS' keys) appended to folder's eval.csv, the header first where the
    file is new or empty; fsynced. Under an exclusive flock: a torn last line is cut off,
    then header and row go in one write (see the module's trap). BadInput naming the file
    where it cannot be written (a full disk: a file this call made is removed again),
    is no regular file (a FIFO, a folder), or is not an eval.csv (`check`)."""
    path = Path(folder) / FILENAME
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    made = not path.exists()
    try:
        fd = os.open(path, flags, 0o666)
    except IsADirectoryError:
        raise BadInput(f"{path}: not a regular file but a folder") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot write ({e.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path}: not a regular file: bnexp eval appends its rows there")
        fcntl.flock(fd, fcntl.LOCK_EX)
        whole = _cut_torn_line(fd)
        _check_header(path, os.pread(fd, len(_line(COLUMNS)), 0) if whole else b"")
        _write_all(fd, (b"" if whole else _line(COLUMNS)) + _line(
            [csv_cell(row.get(c)) for c in COLUMNS]))
        os.fsync(fd)
    except OSError as e:
        if made:  # leave no empty eval.csv behind
            with contextlib.suppress(OSError):
                path.unlink()
        raise BadInput(f"{path}: cannot write ({e.strerror})") from None
    finally:
        os.close(fd)  # and the lock with it


def check(folder: Path) -> None:
    """BadInput where folder's eval.csv exists and is not one (its first line is not the
    header): a row appended under garbage could never be read back (compare would say
    the run has no such evaluation), so nothing is measured for it."""
    path = Path(folder) / FILENAME
    try:
        with open(path, "rb") as f:
            start = f.read(len(_line(COLUMNS)))
    except (FileNotFoundError, IsADirectoryError):
        return
    except OSError:
        return  # unreadable: append says what is wrong with it
    if b"\n" in start or len(start) == len(_line(COLUMNS)):  # not a header cut short
        _check_header(path, start)


def _check_header(path: Path, start: bytes) -> None:
    if start and start != _line(COLUMNS):
        raise BadInput(f"{path}: not an eval.csv bnexp wrote (its first line is not the "
                       "header); move it away, and bnexp eval starts a new one")


def _cut_torn_line(fd: int) -> int:
    """Cut the file back to its last complete line; return its length then."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    keep = data.rfind(b"\n") + 1
    if keep < size:
        os.ftruncate(fd, keep)
    return keep


def _write_all(fd: int, data: bytes) -> None:
    """All of data (a regular file takes it whole; O_NONBLOCK only guarded the open)."""
    while data:
        data = data[os.write(fd, data):]


def _line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- compare's metrics


@dataclass(frozen=True)
class EvalMetric:
    """A compare metric read from eval.csv: `name@condition/stats[=batch]`."""

    text: str  # as given
    name: str  # test_acc, test_loss
    condition: str  # canonical: clean, noise=80, data=x+rotate=90
    stats: str  # population, batch, adapt
    batch_size: int | None = None  # batch=N; None: the run's own data.batch_size

    def value(self, rows: list[dict], run_batch_size, epochs_done) -> tuple[float, str]:
        """(this metric of a run with these eval.csv rows, why it is missing): the last row
        of this condition and stats (and batch size) evaluated at the run's last epoch.
        Why: "" (found), "missing" (never evaluated so) or "stale" (only of an earlier
        checkpoint: the run trained on since)."""
        size = self.batch_size or run_batch_size
        alike = [r for r in rows if r["stats"] == self.stats
                 and condition(r["data"], r["shift"]) == self.condition
                 and (self.stats != "batch" or r["batch_size"] == size)]
        if not alike:
            return math.nan, "missing"
        current = [r for r in alike if r["epoch"] == epochs_done]
        if not current:
            return math.nan, "stale"
        return current[-1][NAMES[self.name]], ""

    def command(self) -> str:
        """The `bnexp eval` options that make this evaluation."""
        options = []
        for part in ([] if self.condition == CLEAN else self.condition.split("+")):
            options.append(f"--data .../{part[5:]}" if part.startswith("data=")
                           else f"--shift {part}")
        options.append(f"--stats {self.stats}")
        if self.batch_size:
            options.append(f"--batch-size {self.batch_size}")
        return " ".join(["bnexp eval RUN", *options])


def parse_metric(metric: str, option: str = "--metric") -> EvalMetric | None:
    """The eval.csv metric `metric` names (NAME@SHIFT/STATS), None for a metric without
    "@" (a metrics.csv column); BadInput naming the option for a malformed one."""
    if "@" not in metric:
        return None
    name, _, rest = metric.partition("@")
    where, slash, stats = rest.rpartition("/")
    if name not in NAMES or not slash or not where:
        raise BadInput(f"{option} {metric}: an evaluation's metric is NAME@SHIFT/STATS, NAME "
                       f"{' or '.join(NAMES)}, e.g. test_acc@noise=80/adapt"
                       f"{did_you_mean(name, list(NAMES)) if name not in NAMES else ''}")
    stats, eq, size = stats.partition("=")
    batch = int(size) if eq and size.isascii() and size.isdigit() else None
    if stats not in STATS or (eq and (stats != "batch" or not batch)):
        raise BadInput(f"{option} {metric}: STATS is population, adapt, batch or batch=N "
                       "(N examples a batch)")
    return EvalMetric(metric, name, _canonical(where, option, metric), stats, batch)


def _canonical(text: str, option: str, metric: str) -> str:
    """SHIFT as eval.csv rows give it: each shift as its label (noise=80.0 -> noise=80).
    A `data=` part is a folder's name, kept as written; a name with a "+" in it is kept
    whole rather than cut."""
    if text == CLEAN:
        return text
    try:
        return "+".join(part if part.startswith("data=") else shifts.parse(part, option).label
                        for part in text.split("+"))
    except BadInput as e:
        if text.startswith("data="):
            return text
        raise BadInput(f"{option} {metric}: SHIFT is clean, data=<folder name> or shifts: "
                       f"{str(e).split(': ', 1)[-1]}") from None
