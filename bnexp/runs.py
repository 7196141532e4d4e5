"""Run folders: created exclusively, metrics appended per epoch, summary replaced atomically.

A run folder holds config.yaml (the resolved config), metrics.csv (one row per
finished epoch, never rewritten), summary.json (always whole: written to a temp
file and renamed over the old one) and train.log. No TensorFlow here: compare
reads run folders through this module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bnexp.errors import BadInput

METRIC_COLUMNS = [
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
    "seconds", "samples_per_sec", "eval_seconds", "test_loss_batchstats", "test_acc_batchstats",
]
LOWER_IS_BETTER = {"train_loss", "val_loss", "test_loss", "test_loss_batchstats"}
QUALITY_COLUMNS = ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                   "test_loss_batchstats", "test_acc_batchstats"]
FINISHED = ("completed", "diverged")  # results: a sweep re-run keeps them


@dataclass
class Outcome:
    """How one run ended: its folder and status (completed, diverged, failed, interrupted)."""

    path: Path | None  # None: the run died before it had a folder
    status: str
    skipped: bool = False  # finished in an earlier invocation; not run again


def ensure_writable(runs_dir: Path) -> None:
    """BadInput unless `runs_dir` exists (or can be made) and a file can be created in it."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs_dir, prefix=".probe-"):
            pass
    except OSError as e:
        raise BadInput(
            f"{runs_dir}: --runs-dir: cannot write run folders here ({e.strerror})"
        ) from None


def create(runs_dir: Path, label: str) -> Path:
    """A new, empty run folder `<label>_<timestamp>[-k]`; mkdir is exclusive, so never shared."""
    base = f"{label}_{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(10_000):
        path = runs_dir / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{runs_dir}: could not find a free run folder name for {base}")


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
        if not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0:
            with open(self.metrics_path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(METRIC_COLUMNS)
                f.flush()
                os.fsync(f.fileno())

    def append_metrics(self, row: dict) -> None:
        """One epoch's row; the header goes first when the file is new."""
        new = not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0
        with open(self.metrics_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k)) for k in METRIC_COLUMNS})
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: dict) -> None:
        text = json.dumps(_finite_or_null(summary), indent=2, default=_json_default)
        write_text_atomic(self.summary_path, text)

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message.rstrip()}\n")


def read_summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text(encoding="utf-8"))


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv rows as dicts of floats (epoch as int, blanks as NaN).

    A last line without its newline (a write cut short by a kill) is not a row: ignored.
    """
    text = (path / "metrics.csv").read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [
        {k: (int(v) if k == "epoch" else float(v) if v else math.nan) for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


def torn_metrics(path: Path) -> bool:
    """True if metrics.csv ends in a line cut short (a kill in the middle of a write)."""
    file = path / "metrics.csv"
    try:
        with open(file, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def repair_metrics(path: Path, rows: list[dict]) -> None:
    """Make metrics.csv hold the header and exactly `rows` (a checkpoint's finished epochs).

    Complete rows already there are kept untouched; a torn last line and any row past
    the checkpoint are cut off; rows the file lacks are appended.
    """
    folder = RunFolder(path)
    file = folder.metrics_path
    lines = file.read_bytes().split(b"\n") if file.exists() else [b""]
    keep = lines[:-1][: 1 + len(rows)]  # complete lines only: the header, then rows
    with open(file, "ab") as f:
        f.truncate(sum(len(line) + 1 for line in keep))
    for row in rows[max(len(keep) - 1, 0) :]:
        folder.append_metrics(row)


def append_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Append rows to a diagnostics CSV (header first when new); flushed, not fsynced:
    a resumed run cuts these files back to its checkpoint anyway (`cut_csv`)."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows({k: _cell(row.get(k)) for k in columns} for row in rows)


def cut_csv(path: Path, keep) -> None:
    """Rewrite a diagnostics CSV with only the complete rows for which keep(row) is true."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    text = text[: text.rfind("\n") + 1]  # a torn last line is not a row
    reader = csv.DictReader(io.StringIO(text))
    rows = [row for row in reader if keep(row)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, out.getvalue())


def best_of(rows: list[dict]) -> dict:
    """Per metric, its best value over epochs (max accuracy, min loss) and the epoch it came."""
    best = {}
    for key in QUALITY_COLUMNS:
        values = [(r[key], r["epoch"]) for r in rows if _finite(r.get(key))]
        if values:
            pick = min if key in LOWER_IS_BETTER else max
            value, epoch = pick(values, key=lambda v: v[0])
            best[key] = value
            best[f"{key}_epoch"] = epoch
    return best


def effective_status(summary: dict) -> str:
    """The recorded status, except that a "running" run whose process is gone is "interrupted".

    A SIGKILLed run cannot write its own end: its summary still says running. The pid
    and host it recorded tell: on this host, a pid that no longer exists means it died.
    """
    status = summary.get("status", "unknown")
    here = summary.get("host") == socket.gethostname()
    if status == "running" and here and not _process_alive(summary.get("pid")):
        return "interrupted"
    return status


def latest_attempts(runs_dir: Path) -> dict[str, tuple[str, Path]]:
    """config_hash -> (status, folder) of the attempt that counts for each config and seed
    under runs_dir: a finished one (completed or diverged) if any, else the latest started.
    Status is effective_status: a dead "running" run reads "interrupted"."""
    found: dict[str, tuple[tuple, str, Path]] = {}
    for summary_path in runs_dir.rglob("summary.json"):
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        key = summary.get("config_hash") if isinstance(summary, dict) else None
        if not key:
            continue
        status = effective_status(summary)
        rank = (status in FINISHED, str(summary.get("started") or ""))
        if key not in found or rank > found[key][0]:
            found[key] = (rank, status, summary_path.parent)
    return {key: (status, path) for key, (_, status, path) in found.items()}


def find_finished(runs_dir: Path) -> dict[str, Path]:
    """config_hash -> folder of a finished (completed or diverged) run under runs_dir."""
    return {k: path for k, (status, path) in latest_attempts(runs_dir).items()
            if status in FINISHED}


def _process_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replace_atomically(path: Path, write) -> None:
    """Write a file so that a reader or a kill sees the old file or the new one, never half.

    write(f) fills a binary file object; it goes to a temp file in the same folder,
    is fsynced and renamed over `path`.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a normal file follows the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


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
