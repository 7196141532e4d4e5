"""Opening a file bnexp did not necessarily write (a config, a run folder's files, a
checkpoint) safely: never waiting on a FIFO, never reading past a limit.

The trap: a path can name something that is not a file at all. A FIFO makes `open()`
wait for a writer (bnexp would hang for ever); /dev/zero or /dev/urandom never end
(bnexp would fill the memory), and their size on disk says 0, so a size check before
reading does not catch them; /proc/kmsg passes for a regular file and waits for ever.
Here every file is opened without waiting, a regular file read without waiting, and
read up to a limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits on a file name and a whole path, in bytes


def too_long_for_a_path(path: str | Path) -> bool:
    """True where no Linux file system could hold `path`: a name past NAME_MAX bytes or
    the whole past PATH_MAX (open() would fail with "File name too long"). Counted in the
    bytes the OS gets: a byte that is not UTF-8 (`bnexp compare $'\\xff'`) is one."""
    text = str(path)
    return size_in_bytes(text) >= PATH_MAX or any(size_in_bytes(part) > NAME_MAX
                                                  for part in text.split("/"))


def size_in_bytes(text: str) -> int:
    """How many bytes `text` is as a file name: os.fsencode's count, where a command
    line's byte that is not UTF-8 (a surrogate escape) is one byte; a lone surrogate that
    no file name can hold (see path_problem) as UTF-8 would spell it."""
    try:
        return len(os.fsencode(text))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def path_problem(path: str | Path) -> str | None:
    """Why no operating system could open `path`, as "PATH: reason", else None: a NUL
    character (Python raises ValueError, not OSError, on one), a character with no bytes
    in a file name (a lone surrogate: UnicodeEncodeError), a name past NAME_MAX bytes or
    the whole past PATH_MAX. Every path a user gives bnexp (each path argument and option
    of the CLI, each path the Python API takes) is checked with it before anything is
    read or written, so such a path is one line of bad input, never a traceback."""
    text = str(path)
    shown = text if len(text) <= 100 else f"{text[:100]}..."
    if "\0" in text:
        return f"{shown}: a NUL character, which no file or folder name can hold"
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        return f"{shown}: a character no file or folder name can hold (a lone surrogate)"
    if too_long_for_a_path(text):
        return (f"{shown}: too long for a path (names up to {NAME_MAX} bytes, paths up to "
                f"{PATH_MAX})")
    return None


class NotARegularFile(OSError):
    """A run folder's file that is a FIFO, a device, a folder or a socket."""


class TooLarge(ValueError):
    """The file holds more than the limit (or never ends)."""


def open_for_reading(path: Path, regular: bool = False) -> BinaryIO:
    """The file opened for binary reading, never waiting at open (a FIFO with no writer
    reads as empty); OSError where it cannot be opened. regular: only a regular file
    (what a run folder holds), else OSError: a FIFO whose writer stays open and silent
    would hold the first read for ever (a config may be a pipe: /dev/stdin)."""
    fd = _open_descriptor(path, regular)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_descriptor(path: Path, regular: bool) -> int:
    """open_for_reading's file as a bare descriptor (the caller closes it)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if regular and not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file", str(path))
        if not stat.S_ISREG(mode):  # a pipe: reads wait for a writer that is there
            os.set_blocking(fd, True)
        # a regular file stays non-blocking: a file on disk never waits, and one that
        # would (/proc/kmsg says it is regular, and waits for the kernel's next
        # message) answers at once with an OSError (EAGAIN) instead of hanging bnexp
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: Path, limit: int, regular: bool = False) -> bytes:
    """The file's bytes, at most `limit` of them; TooLarge if there are more (an endless
    file is read no further than limit + 1 bytes). On the bare descriptor: a file object
    cost compare 0.25 s over 10,000 summaries."""
    fd = _open_descriptor(path, regular)
    try:
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise TooLarge(f"{Path(path).name} is larger than {limit:,} bytes")
    return b"".join(chunks)
