"""Reading run folders back: the one reader that train, resume, sweep, compare and plot use.

It tolerates every broken file: an unreadable or foreign summary.json is a problem
to report, not a crash; a torn last CSV line (a kill mid-write) is not a row. The
latest-attempt rule (RunRecord.rank) decides which attempt of a config counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import yaml

from bnexp.reading import open_for_reading, read_bounded
from bnexp.runs.files import complete_lines
from bnexp.runs.record import FINISHED, RunRecord, effective_status

MAX_SUMMARY_BYTES = 4 << 20  # summary.json is a few KiB; a bigger one is not bnexp's
MAX_CSV_BYTES = 256 << 20  # steps.csv of a long run is a few MiB


def read_summary(path: Path) -> dict:
    """summary.json as written; ValueError if it is too large or not JSON (OSError if it
    cannot be read)."""
    text = _read_bounded(path / "summary.json", MAX_SUMMARY_BYTES)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _read_bounded(file: Path, limit: int) -> str:
    """A text file read whole, at most `limit` bytes (never an endless file or a link to
    one, never waiting on a FIFO); undecodable bytes become U+FFFD."""
    return read_bounded(file, limit).decode("utf-8", errors="replace")


def read_record(folder: Path, with_config: bool = False) -> RunRecord:
    """The record of one run folder; ValueError saying why it is not a readable run."""
    try:
        summary = read_summary(folder)
    except (OSError, ValueError) as e:
        raise ValueError(f"unreadable summary.json ({type(e).__name__})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
        raise ValueError("summary.json is not a bnexp summary")
    summary = _well_typed(summary)
    config = None
    if with_config:
        config = summary.get("config")
        if not isinstance(config, dict):
            config = _read_config_yaml(folder)
    return RunRecord(folder, summary, effective_status(summary), config)


def _well_typed(summary: dict) -> dict:
    """The summary with every field a reader relies on of the type it expects; a field of
    another type (a hand-edited or foreign file) reads as absent."""
    kinds = {"final": dict, "best": dict, "data": dict, "config": dict, "started": str,
             "config_hash": str, "epochs_done": int, "seed": int, "notes": list}
    return {k: v for k, v in summary.items()
            if k not in kinds or (isinstance(v, kinds[k]) and not isinstance(v, bool))}


def scan(runs_dir: Path, with_config: bool = False) -> tuple[list[RunRecord], list[str]]:
    """Every run folder beneath runs_dir (sorted by path), and one warning per folder that
    was skipped: unreadable, foreign, or partial."""
    records, warnings = [], []
    found, folders = _walk(runs_dir)
    run_dirs = sorted(map(Path, found))
    for folder in run_dirs:
        try:
            records.append(read_record(folder, with_config))
        except ValueError as e:
            warnings.append(f"skipped {folder}: {e}")
            continue
        if torn(folder / "metrics.csv"):
            warnings.append(f"{folder}: metrics.csv ends in a torn line (a kill mid-write); "
                            "that line is ignored")
    return records, warnings + _foreign_folders(runs_dir, set(found), folders)


def scan_latest(runs_dir: Path, with_config: bool = False) -> tuple[list[RunRecord], list[str]]:
    """As `scan`, keeping of several attempts of one config and seed the one that counts
    (sorted by path); a warning says how many earlier attempts were left out."""
    records, warnings = scan(runs_dir, with_config)
    kept = sorted(latest(records).values(), key=lambda r: r.path)
    if len(kept) < len(records):
        warnings.append(f"ignored {len(records) - len(kept)} earlier attempt(s) of configs "
                        "that ran again")
    return kept, warnings


def latest(records: list[RunRecord]) -> dict[str, RunRecord]:
    """config hash -> the attempt that counts (RunRecord.rank); a record without a hash
    stands for itself (keyed by its path)."""
    found: dict[str, RunRecord] = {}
    for record in records:
        key = record.config_hash or str(record.path)
        if key not in found or record.rank() > found[key].rank():
            found[key] = record
    return found


def latest_attempts(runs_dir: Path) -> dict[str, tuple[str, Path]]:
    """config_hash -> (status, folder) of the attempt that counts for each config and seed."""
    records, _ = scan(runs_dir) if runs_dir.is_dir() else ([], [])
    return {key: (r.status, r.path) for key, r in latest(records).items() if r.config_hash}


def find_finished(runs_dir: Path) -> dict[str, Path]:
    """config_hash -> folder of a finished (completed or diverged) run under runs_dir."""
    return {k: path for k, (status, path) in latest_attempts(runs_dir).items()
            if status in FINISHED}


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv rows as dicts of floats (epoch as int, blanks and unreadable cells as
    NaN); a torn last line is not a row, nor one whose epoch is not a whole number."""
    text = complete_lines(_read_bounded(path / "metrics.csv", MAX_CSV_BYTES))
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        epoch = _number(row.get("epoch"))
        if epoch is None or epoch != int(epoch):
            continue
        rows.append({k: int(epoch) if k == "epoch" else _number(v, math.nan)
                     for k, v in row.items() if isinstance(k, str)})
    return rows


def _number(text, default=None):
    """A cell as a finite float, else default."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


# the columns each diagnostics file's readers rely on; text columns, the rest numbers
TABLE_COLUMNS = {"activations.csv": ("step", "layer", "unit", "p15", "p50", "p85"),
                 "drift.csv": ("epoch", "layer", "mean_error", "variance_error"),
                 "steps.csv": ("epoch", "step")}
TEXT_COLUMNS = ("layer", "unit")


def read_table(path: Path, name: str):
    """A run folder's CSV file (a diagnostics file) as a DataFrame, empty if absent or
    not that file (a column its readers need is missing); a torn last line is dropped,
    an unreadable number is NaN. `unit` stays text ("all" beside unit numbers)."""
    import pandas as pd

    file = path / name
    if not file.exists():
        return pd.DataFrame()
    try:
        text = complete_lines(_read_bounded(file, MAX_CSV_BYTES))
        frame = pd.read_csv(io.StringIO(text), dtype={"unit": str}) if text else pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame()
    needed = TABLE_COLUMNS.get(name, ())
    if not set(needed) <= set(frame.columns):
        return pd.DataFrame()
    for column in needed:
        if column in TEXT_COLUMNS:
            frame[column] = frame[column].astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def torn(file: Path) -> bool:
    """True if the file ends in a line cut short (a kill in the middle of a write)."""
    try:
        with open_for_reading(file) as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:
        return False


def torn_metrics(path: Path) -> bool:
    return torn(path / "metrics.csv")


def _read_config_yaml(folder: Path) -> dict:
    try:
        config = yaml.safe_load(_read_bounded(folder / "config.yaml", MAX_SUMMARY_BYTES))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        raise ValueError("no readable config in summary.json or config.yaml") from None
    if not isinstance(config, dict):
        raise ValueError("config.yaml is not a mapping")
    return config


def _walk(runs_dir: Path) -> tuple[list[str], list[str]]:
    """(run folders: those holding a summary.json, every folder beneath runs_dir), as
    paths in text. One pass of os.walk, which, like Path.rglob, lists a link to a folder
    without going into it; text, not Path objects: 10,000 run folders in ~0.2 s."""
    run_dirs, folders = [], []
    for root, dirs, files in os.walk(runs_dir):
        if "summary.json" in files or "summary.json" in dirs:
            run_dirs.append(root)
        if root != str(runs_dir):
            folders.append(root)
        folders += [link for link in (os.path.join(root, d) for d in dirs) if os.path.islink(link)]
    return run_dirs, folders


def _foreign_folders(runs_dir: Path, run_dirs: set[str], folders: list[str]) -> list[str]:
    """One warning per folder holding files that is neither a run folder nor above one."""
    top, above = str(runs_dir), set()
    for folder in run_dirs:
        while folder != top and folder != os.path.dirname(folder):
            folder = os.path.dirname(folder)
            above.add(folder)
    warnings = []
    for folder in sorted(map(Path, _outside_runs(folders, run_dirs, above, top))):
        if any(part.startswith(".") for part in folder.relative_to(runs_dir).parts):
            continue
        # hidden files are temp files mid-rename (the first summary.json of a new run)
        files = {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
        if "summary.json" in files:
            continue  # a run that started after the scan listed the folder: next time
        if files & {"config.yaml", "metrics.csv"}:
            warnings.append(f"skipped {folder}: a partial run folder (no summary.json)")
        elif files:
            warnings.append(f"skipped {folder}: not a bnexp run folder")
    return warnings


def _outside_runs(folders: list[str], run_dirs: set[str], above: set[str], top: str):
    """The folders that are neither a run folder, nor above one, nor inside one."""
    for folder in folders:
        if folder in run_dirs or folder in above:
            continue
        parent = os.path.dirname(folder)
        while parent != top and parent not in run_dirs and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        if parent not in run_dirs:
            yield folder
