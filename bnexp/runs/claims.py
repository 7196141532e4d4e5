"""Claims: no two processes (or threads) start the same run, or write into one run folder
at once.

A run is claimed by its summary.json saying "running" with the pid, process start time
and host of the process training it (bnexp.runs.record.effective_status tells a live
claimant from a dead one: a dead one's run reads "interrupted" and is resumed). What
must be atomic is the step from "nobody trains it" to "running": deciding and writing
at once. That step happens under an exclusive `flock` on a folder itself (no lock file
is made):

- the runs folder, to start or resume a config and seed there (the sweep's plan, made
  earlier from the folders alone, is checked again under it: bnexp.runs.plan.settle,
  and the new run's summary written before it is released); held for that step only;
- a run folder, to resume it (`train --resume`, or a sweep) or to write into it from
  outside its training (`bnexp eval`, a parent recording its dead worker's run); taken
  without waiting: a folder in use is refused or skipped, never waited for.

The kernel releases a lock when its holder closes it or dies, however it dies (SIGKILL,
the OOM killer). flock locks an open file, not a process, so two threads of one process
exclude each other as two processes do. The trap: the same folder locked twice by one
thread refuses the thread itself, so a lock is taken once and the work done inside.
Where the file system has no flock (some network mounts), the step runs unlocked, as
bnexp did before claims.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class Taken(Exception):
    """A run folder another process or thread is using (resuming or evaluating it)."""

    def __init__(self, folder: Path):
        super().__init__(f"{folder}: in use by another bnexp process (being resumed or "
                         "evaluated); try again once it has finished")
        self.folder = folder


@contextlib.contextmanager
def runs_folder(runs_dir: Path) -> Iterator[None]:
    """Hold the runs folder's lock (waiting for it: others hold it for milliseconds)."""
    with _locked(runs_dir, wait=True):
        yield


@contextlib.contextmanager
def run_folder(path: Path) -> Iterator[None]:
    """Hold run folder `path`'s lock; Taken at once if another holds it."""
    with _locked(path, wait=False):
        yield


@contextlib.contextmanager
def _locked(folder: Path, wait: bool) -> Iterator[None]:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # not (yet) a folder: the step's own checks say what is wrong
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Taken(folder) from None
        except OSError:  # no flock on this file system: unlocked
            pass
        yield
    finally:
        os.close(fd)  # closing the folder releases the lock
