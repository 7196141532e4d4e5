"""What a process inherits from its shell, made safe before a command starts: the
standard streams and the folders its environment names.

Streams: a stream its caller closed is taken by /dev/null; characters the terminal's
encoding lacks are printed escaped; a reader that went away (`bnexp ... | head -1`,
`| true`) silences the stream, and the command goes on: its exit code keeps its
meaning; a standard output that cannot be written at all is said once on stderr (exit
code 2), never a traceback. A working folder deleted under the command: whatever needs
it (a relative path, the worker processes of a sweep) is one line, exit code 2.
Folders: see `check_folders`. The `bnexp` command runs inside `run`.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path


def run(entry) -> None:
    """entry(), the standard streams and the environment's folders made safe first; where
    standard output itself fails (a full device, a descriptor opened read-only), or the
    working folder is gone where something needs it: one line on stderr, exit code 2."""
    _claim_closed_standard_streams()
    _survive_readers_that_leave()
    check_folders()
    try:
        entry()
    except OSError as e:
        if _working_folder_gone() and isinstance(e, FileNotFoundError) and not e.filename:
            # os.getcwd() failed (multiprocessing's workers, a relative path made absolute)
            print("error: the working folder no longer exists (deleted?); cd to a folder "
                  "that does (absolute paths and --jobs 1 need none)", file=sys.stderr)
            sys.exit(2)
        if e.filename is not None or e.errno not in _STDOUT_FAILURES:
            raise
        # standard output itself failed (a full device, a descriptor opened read-only):
        # say so once, and let nothing flush to it again at exit (a second traceback)
        print(f"error: cannot write to standard output ({e.strerror})", file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(2)


_STDOUT_FAILURES = {errno.EBADF, errno.ENOSPC, errno.EIO, errno.EDQUOT}


def _working_folder_gone() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


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


class _ReaderMayLeave(io.RawIOBase):
    """Descriptor `fd` for writing, as Python's own file object writes it, except that a
    reader that went away (EPIPE: `| head -1` had its line, `| true` wanted none) is no
    error: the descriptor is pointed at /dev/null and the rest dropped. The trap it
    closes: BrokenPipeError reached rich, whose handler exits with 1 ("a run failed"),
    wherever the command was; or Python's flush at exit, which also makes it 1."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd
        self._failed = False

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data) -> int | None:
        if self._failed:  # said once already: the rest is dropped, at exit too
            return len(memoryview(data))
        try:
            return os.write(self._fd, data)
        except BlockingIOError:  # a non-blocking descriptor that is full: as FileIO does
            return None
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._fd)
            os.close(devnull)
            return len(memoryview(data))
        except OSError:  # a full device, a read-only descriptor: raised once (the command
            self._failed = True  # says so), then dropped: its buffer flushed at exit again
            raise                # was a second error and exit code 120


def _survive_readers_that_leave() -> None:
    """sys.stdout and sys.stderr rebuilt over _ReaderMayLeave, with what they had
    (encoding, line buffering); characters the terminal's encoding lacks (an é in a
    path, compare's ±, under PYTHONIOENCODING=ascii or a latin-1 terminal) are printed
    escaped (\\xe9), not raised as UnicodeEncodeError half way through a table."""
    for name in ("stdout", "stderr"):
        old = getattr(sys, name)
        try:
            fd = old.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file: leave it
            if hasattr(old, "reconfigure"):
                old.reconfigure(errors="backslashreplace")
            continue
        old.flush()
        raw = _ReaderMayLeave(fd)
        unbuffered = not isinstance(getattr(old, "buffer", None), io.BufferedWriter)
        setattr(sys, name, io.TextIOWrapper(  # PYTHONUNBUFFERED: no buffer, as Python's
            raw if unbuffered else io.BufferedWriter(raw), encoding=old.encoding,
            errors="backslashreplace",
            line_buffering=old.line_buffering, write_through=getattr(old, "write_through",
                                                                     False)))


# ---------------------------------------------------------------- the environment's folders


def check_folders() -> None:
    """The environment variables that name folders, made usable for this process and its
    children, quietly (each value bnexp cannot use falls back as the variable's own rules
    say, without a word):

    - XDG_CACHE_HOME, XDG_CONFIG_HOME: a relative value is ignored (the XDG spec; it made
      matplotlib write ./<value>/matplotlib into the working folder);
    - HOME: a relative or empty one is the user's home from the password database;
    - TMPDIR: one that is not an absolute path of a writable folder is dropped (Python's
      tempfile then takes /tmp; a relative one put temporary files where bnexp stood);
    - MPLCONFIGDIR: where it (or, unset, the folders matplotlib would use) cannot be a
      writable folder, a private temporary one, removed at exit (matplotlib printed two
      lines of warnings, and made one of its own and left it)."""
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        if name in os.environ and not os.path.isabs(os.environ[name]):
            del os.environ[name]
    if "HOME" in os.environ and not os.path.isabs(os.environ["HOME"]):
        _home_from_the_password_database()
    tmp = os.environ.get("TMPDIR")
    if tmp is not None and not (os.path.isabs(tmp) and _writable_folder(Path(tmp))):
        del os.environ["TMPDIR"]
    if not all(_could_be_a_writable_folder(f) for f in _matplotlib_folders()):
        _private_matplotlib_folder()


def _home_from_the_password_database() -> None:
    try:
        import pwd

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        home = ""
    if os.path.isabs(home):
        os.environ["HOME"] = home
    else:
        del os.environ["HOME"]


def _matplotlib_folders() -> list[Path | None]:
    """The folders matplotlib will keep its config and cache in (its own rules); None
    where there is none to find."""
    given = os.environ.get("MPLCONFIGDIR")
    if given:
        return [Path(given) if os.path.isabs(given) else None]
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no password entry
        home = None
    folders: list[Path | None] = []
    for name, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        base = os.environ.get(name) or (home / default if home else None)
        folders.append(Path(base) / "matplotlib" if base else None)
    return folders


def _could_be_a_writable_folder(folder: Path | None) -> bool:
    """Whether `folder` is a writable folder, or could be made as one (its nearest
    existing parent is a writable folder); nothing is made."""
    if folder is None or not folder.is_absolute():
        return False
    while not folder.exists() and not folder.is_symlink():
        if folder.parent == folder:
            return False
        folder = folder.parent
    return _writable_folder(folder)


def _writable_folder(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _private_matplotlib_folder() -> None:
    import atexit
    import shutil
    import tempfile

    try:
        folder = tempfile.mkdtemp(prefix="bnexp-matplotlib-")
    except OSError:  # no usable temporary folder either: matplotlib's own fallbacks
        os.environ.pop("MPLCONFIGDIR", None)
        return
    os.environ["MPLCONFIGDIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
