"""The process's standard streams, made safe to print to: a stream its caller closed is
taken by /dev/null, characters the terminal's encoding lacks are printed escaped, and a
standard output that cannot be written is said once on stderr (exit code 2), never a
traceback. The `bnexp` command runs inside `run`.
"""

from __future__ import annotations

import errno
import os
import sys


def run(entry) -> None:
    """entry(), the standard streams made safe first; where standard output itself fails
    (a full device, a descriptor opened read-only): one line on stderr, exit code 2."""
    _claim_closed_standard_streams()
    _never_fail_to_print()
    try:
        entry()
    except OSError as e:
        if e.filename is not None or e.errno not in _STDOUT_FAILURES:
            raise
        # standard output itself failed (a full device, a descriptor opened read-only):
        # say so once, and let nothing flush to it again at exit (a second traceback)
        print(f"error: cannot write to standard output ({e.strerror})", file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(2)


_STDOUT_FAILURES = {errno.EBADF, errno.ENOSPC, errno.EIO, errno.EDQUOT}


def _claim_closed_standard_streams() -> None:
    """A standard stream its caller closed (`>&-`, `2>&-`) is taken by /dev/null. The
    trap: Python then sets sys.stdout (or sys.stderr) to None and print() drops output
    without a word (compare's table lost, exit 0; errors sent to stdout instead), and
    the next file opened would get descriptor 1 or 2 and receive what is printed there.
    A closed stdout is reopened read-only, so the first write fails as for any stdout
    that cannot be written (one line on stderr, exit 2)."""
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_RDONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        taken = os.open(os.devnull, mode)
        if taken != fd:
            os.dup2(taken, fd)
            os.close(taken)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (lives as long as bnexp)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _never_fail_to_print() -> None:
    """Characters the terminal's encoding lacks (an é in a path, compare's ±, under
    PYTHONIOENCODING=ascii or a latin-1 terminal) are printed escaped (\\xe9), not
    raised as UnicodeEncodeError half way through a table."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
