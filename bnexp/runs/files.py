"""Writing run folders: created exclusively, metrics appended per epoch, summary replaced
atomically (bnexp.runs.atomic), diagnostics CSVs appended and cut back on resume.

A run folder holds config.yaml (the resolved config), metrics.csv (one row per
finished epoch, never rewritten), summary.json (always whole: written to a temp file
and renamed over the old one) and train.log. The trap every writer here avoids: a
reader (compare, a second process, a resume after a kill) must never see half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path

from bnexp.errors import BadInput
from bnexp.runs.atomic import write_text_atomic
from bnexp.runs.record import EPOCH_COLUMNS
from bnexp.safeopen import NAME_MAX, PATH_MAX, size_in_bytes

PROBE_BYTES = 4096
RUN_NAME_MAX = 240  # a run folder's name: a label of up to 200 characters, time, "-k"


def ensure_writable(runs_dir: Path) -> None:
    """BadInput unless run folders can be written under `runs_dir`: the folder (or, where
    it does not exist yet, its nearest existing parent) takes a file of a page, and the
    name has no control characters (stdout lists run folders one per line). Creates
    nothing: a command that then finds bad input leaves no empty folder behind."""
    if any(ord(c) < 32 for c in str(runs_dir)):
        raise BadInput(f"{str(runs_dir)!r}: --runs-dir: a folder name with a line break or "
                       "other control character would break the one-folder-per-line output")
    too_long = [part for part in runs_dir.parts if size_in_bytes(part) > NAME_MAX]
    if too_long or size_in_bytes(str(runs_dir.absolute())) + RUN_NAME_MAX >= PATH_MAX:
        raise BadInput(f"{str(runs_dir)[:200]}: --runs-dir: the path is too long for run "
                       f"folders (names up to {NAME_MAX} bytes, paths up to {PATH_MAX})")
    existing = runs_dir
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # mkdir would fail there later, after TensorFlow started
            raise BadInput(f"{runs_dir}: --runs-dir: {existing} is a symbolic link to "
                           "nothing (or a loop): run folders cannot be made there")
        existing = existing.parent  # the folder is made later, when a run starts
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a folder", str(existing))
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".probe-") as probe:
            probe.write(b"\0" * PROBE_BYTES)  # a full disk refuses a page, not 0 bytes
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise BadInput(
            f"{runs_dir}: --runs-dir: cannot write run folders here ({e.strerror})"
        ) from None


def create(runs_dir: Path, label: str) -> Path:
    """A new, empty run folder `<label>_<timestamp>[-k]`; mkdir is exclusive, so never shared."""
    base = f"{label}_{time.strftime('%Y%m%d-%H%M%S')}"
    return _free_name(runs_dir, base, lambda path: path.mkdir())


def move_into(runs_dir: Path, hidden: Path, name: str) -> Path:
    """Rename a finished hidden folder to runs_dir/name (or name-k where name is taken)."""
    def claim(path: Path) -> None:
        if path.exists():
            raise FileExistsError(path)
        os.rename(hidden, path)

    return _free_name(runs_dir, name, claim)


def _free_name(runs_dir: Path, base: str, claim) -> Path:
    for k in range(10_000):
        path = runs_dir / (base if k == 0 else f"{base}-{k}")
        try:
            claim(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{runs_dir}: could not find a free run folder name for {base}")


def record_death(path: Path, pid: int, how: str) -> dict:
    """The summary of the run in `path` once process `pid`, which trained it, has died
    without a word (SIGKILL, the OOM killer): where it still says "running" in that
    process, it now says "interrupted" (a later sweep resumes it) with `how` as its
    error, under the folder's lock (a process resuming it meanwhile wins)."""
    from bnexp.runs import claims
    from bnexp.runs.reader import read_summary

    try:
        with claims.run_folder(path):
            summary = read_summary(path)
            if not isinstance(summary, dict):
                raise ValueError("not a summary")
            if summary.get("status") != "running" or summary.get("pid") != pid:
                return summary
            summary.update(status="interrupted", error=how,
                           ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            folder = RunFolder(path)
            folder.write_summary(summary)
            folder.log(f"interrupted: {how}")
            return summary
    except (claims.Taken, OSError, ValueError):
        return {"status": "interrupted", "error": how}


class RunFolder:
    """Writes one run's files. Every write is flushed before the method returns."""

    def __init__(self, path: Path):
        self.path = path
        self.metrics_path = path / "metrics.csv"
        self.summary_path = path / "summary.json"
        self.log_path = path / "train.log"

    def write_config(self, text: str) -> None:
        write_text_atomic(self.path / "config.yaml", text)

    def start_metrics(self) -> None:
        """metrics.csv with its header and no rows yet: a run that ends early still has one."""
        self.append_metrics(None)

    def append_metrics(self, row: dict | None) -> None:
        """One epoch's row (fsynced); the header goes first when the file is new. A key
        that is not an EPOCH_COLUMNS column raises: a new field must be declared there."""
        new = not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0
        with open(self.metrics_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=EPOCH_COLUMNS, extrasaction="raise")
            if new:
                writer.writeheader()
            if row is not None:
                writer.writerow({k: csv_cell(v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: dict) -> None:
        text = json.dumps(_finite_or_null(summary), indent=2, default=_json_default)
        write_text_atomic(self.summary_path, text)

    def log(self, message: str) -> None:
        """A line of train.log; best effort: a full disk loses the line, not the run."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{stamp} {message.rstrip()}\n")
        except OSError:
            pass


def complete_lines(text: str) -> str:
    """The text up to its last newline: a last line without one (a write cut short by a
    kill) is not a row. The one torn-line rule of every CSV reader and writer here."""
    return text[: text.rfind("\n") + 1]


def repair_metrics(path: Path, rows: list[dict]) -> None:
    """Make metrics.csv hold the header and exactly `rows` (a checkpoint's finished epochs).

    Complete rows already there are kept untouched; a torn last line and any row past
    the checkpoint are cut off; rows the file lacks are appended. A file that is not the
    one bnexp wrote (its first line no header of ours, a kept row not the epoch it should
    be: garbage, another file) is set aside and written anew from the checkpoint: kept
    by line count, garbage was trusted and the run ended "completed" with no readable
    metrics."""
    folder = RunFolder(path)
    file = folder.metrics_path
    lines = file.read_bytes().split(b"\n") if file.exists() else [b""]
    keep = lines[:-1][: 1 + len(rows)]  # complete lines only: the header, then rows
    if lines != [b""] and not _our_metrics(keep):
        set_aside(file, "not the metrics.csv bnexp wrote (damaged); rebuilt from the "
                  "checkpoint")
        keep = []
    if file.exists():
        with open(file, "ab") as f:
            f.truncate(sum(len(line) + 1 for line in keep))
    for row in rows[max(len(keep) - 1, 0) :] if keep else rows:
        folder.append_metrics(row)


_METRICS_HEADERS = {",".join(EPOCH_COLUMNS[:k]).encode() for k in range(2, len(EPOCH_COLUMNS) + 1)}


def _our_metrics(lines: list[bytes]) -> bool:
    """Whether complete lines of a metrics.csv are bnexp's: a header of EPOCH_COLUMNS (an
    older bnexp's: fewer of its last columns), then rows of epochs 1, 2, ..."""
    if not lines:
        return True  # not one complete line: a file cut short before its header
    return lines[0] in _METRICS_HEADERS and all(
        line.split(b",", 1)[0] == str(epoch).encode()
        for epoch, line in enumerate(lines[1:], start=1))


def set_aside(path: Path, why: str) -> Path:
    """Rename a damaged file of a run folder to NAME.damaged (replacing an older one), so
    that nothing is lost and a new one can start; train.log says why."""
    target = path.with_name(f"{path.name}.damaged")
    os.replace(path, target)
    RunFolder(path.parent).log(f"{path.name}: {why}; the old file is {target.name}")
    return target


def append_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Append rows to a diagnostics CSV (header first when new); flushed, not fsynced:
    a resumed run cuts these files back to its checkpoint anyway (`cut_csv`)."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="raise")
        if new:
            writer.writeheader()
        writer.writerows({k: csv_cell(row.get(k)) for k in columns} for row in rows)


def cut_csv(path: Path, keep, columns: list[str]) -> None:
    """Rewrite a diagnostics CSV with only the complete rows for which keep(row) is true.
    A file whose header is not `columns` (damaged, or another file) is set aside
    (NAME.damaged) and a new one starts with the next rows; a row keep() cannot read
    (a number that is not one) is dropped."""
    if not path.exists():
        return
    reader = csv.DictReader(io.StringIO(complete_lines(path.read_text(
        encoding="utf-8", errors="replace"))))
    if reader.fieldnames != columns:
        set_aside(path, "not the file bnexp wrote (its header is not its columns)")
        return
    rows = [row for row in reader if _kept(keep, row)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, out.getvalue())


def _kept(keep, row: dict) -> bool:
    try:
        return bool(keep(row))
    except (ValueError, TypeError, KeyError):
        return False


def csv_cell(value) -> str:
    """A value as bnexp's CSV files write it: blank for None or NaN, floats to 6 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _finite_or_null(value):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
