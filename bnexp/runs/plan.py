"""What to do with the run folders already there, decided from their files alone (no
TensorFlow): a sweep's plan (skip what finished or still runs, resume what was
interrupted, start the rest), made once before any run; the same decision for one run
again once a worker has claimed it (`settle`: other processes may have trained it
meanwhile); and whether `--resume` can continue a folder, so bad input is answered
before TensorFlow starts."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from bnexp import config as config_mod
from bnexp.config import Config
from bnexp.errors import BadInput
from bnexp.runs import checkpoint
from bnexp.runs.reader import read_record
from bnexp.runs.record import FINISHED, Outcome
from bnexp.runs.search import latest_attempts, scan


def resumable(path: Path) -> tuple[dict, Config]:
    """(summary, config) of a run that can be resumed; BadInput saying why one cannot."""
    if not (path / "summary.json").is_file():
        raise BadInput(f"{path}: --resume: not a run folder (no summary.json)")
    for entry in sorted(path.iterdir()):  # resuming appends to them: a FIFO would hang it
        if not (entry.is_file() or entry.is_dir()):
            raise BadInput(f"{entry}: --resume: not a regular file (bnexp writes only "
                           "regular files in a run folder)")
    try:
        record = read_record(path)
    except ValueError as e:
        raise BadInput(f"{path}/summary.json: --resume: {e}") from None
    summary = record.summary
    if record.status == "running":
        raise BadInput(f"{path}: --resume: still running (pid {summary.get('pid')} on "
                       f"{summary.get('host')})")
    specs = config_mod.load(path / "config.yaml")
    if len(specs) != 1:  # a hand-edited config.yaml with a sweep: not one run's config
        raise BadInput(f"{path}/config.yaml: --resume: a sweep of {len(specs)} runs, not "
                       "the config of one run; start a new run instead")
    (spec,) = specs
    if config_mod.config_hash(spec.config) != summary.get("config_hash"):
        raise BadInput(f"{path}/config.yaml: --resume: the config changed since the run "
                       "started; start a new run instead")
    if (path / checkpoint.FILENAME).exists():
        checkpoint.read(path / checkpoint.FILENAME)  # whole, before anything is written
    return summary, spec.config


def plan(specs: list, runs_dir: Path, force: bool, reporter) -> tuple[list, list]:
    """(Outcomes of the runs left as they are, [(spec, folder to resume or None)] to train).

    Each spec is matched by its config hash with the latest attempt under runs_dir: a
    finished one (completed, diverged) or one still running in a live process is skipped
    (and reported); an interrupted one resumes in its folder; a failed or missing one
    starts afresh. force: every spec starts afresh."""
    attempts = {} if force else latest_attempts(runs_dir)
    outcomes, todo = [], []
    for spec in specs:
        status, path = attempts.get(config_mod.config_hash(spec.config), (None, None))
        if status in FINISHED or status == "running":
            outcomes.append(Outcome(path, status, skipped=True))
            reporter.run_skipped(path, status)
        elif status == "interrupted" and (why := _why_not_resumable(path)):
            reporter.note(f"{path}: cannot resume ({why}); the run starts afresh")
            todo.append((spec, None))
        else:
            todo.append((spec, path if status == "interrupted" else None))
    return outcomes, todo


def _why_not_resumable(path: Path) -> str | None:
    """Why an interrupted run's folder cannot be continued (damaged files), or None."""
    try:
        resumable(path)
    except BadInput as e:
        return "; ".join(e.args)  # a damaged config.yaml's several mistakes: one note
    return None


class Decision(NamedTuple):
    """What a worker does with one config and seed: "start" afresh, "resume" the run in
    `path`, or "skip" it (finished, or `status` "running" in a live process)."""

    action: str
    path: Path | None = None
    status: str | None = None


def settle(runs_dir: Path, config_hash: str, fresh: bool) -> Decision:
    """The plan for one config and seed made again, from the folders as they are now:
    run under the runs folder's lock (bnexp.runs.claims), it sees every run other
    processes started or ended since the sweep's plan. An attempt running in a live
    process is left alone, even with fresh (--force: otherwise start afresh)."""
    records = [r for r in scan(runs_dir)[0] if r.config_hash == config_hash] \
        if runs_dir.is_dir() else []
    running = [r for r in records if r.status == "running"]
    if running:
        return Decision("skip", running[0].path, "running")
    if fresh or not records:
        return Decision("start")
    latest = max(records, key=lambda record: record.rank())
    if latest.status in FINISHED:
        return Decision("skip", latest.path, latest.status)
    if latest.status == "interrupted" and _why_not_resumable(latest.path) is None:
        return Decision("resume", latest.path)
    return Decision("start")
