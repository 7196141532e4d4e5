"""The command line's argument types: the choices of its options, and the parsers every
path argument and option goes through (an empty path, or one no OS could open, is
refused while the options are parsed, before a command starts). No TensorFlow."""

from __future__ import annotations

import errno
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import typer

from bnexp.errors import BadInput
from bnexp.safeopen import path_problem


class Backend(StrEnum):
    local = "local"
    ray = "ray"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    markdown = "markdown"
    json = "json"


class At(StrEnum):
    final = "final"
    best = "best"


class DoctorFormat(StrEnum):
    text = "text"
    json = "json"


class StandardOutput(type(Path())):
    """`--out -`: standard output, as Unix tools read it (`./-` is a file named -)."""


def out_path_arg(value: str) -> Path:
    return StandardOutput(value) if value == "-" else path_arg(value)


def path_arg(value: str) -> Path:
    """A path argument or option as given; an empty one is refused (Path("") is the
    current folder, so `compare ''` compared, and `plot runs ''` wrote into, the folder
    you stand in), and so is one no OS could open (possible_path)."""
    if not value:
        raise typer.BadParameter("an empty path; give a file or folder ('.' for this one)")
    return Path(possible_path(value))


def possible_path(value: str) -> str:
    """value, unless no OS could open it (a NUL, a name too long: safeopen.path_problem):
    one line naming the option, exit 2, before the command starts. Every path argument and
    option parses through here (tests/test_cli_paths.py): a NUL in --out was a traceback."""
    problem = path_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


class FigureFormat(StrEnum):
    """plot runs' files (the other figures take theirs from --out's suffix)."""

    png = "png"
    svg = "svg"
    pdf = "pdf"


class Band(StrEnum):
    """Around a mean over seeds: its 95% CI, ± 1 std, or nothing."""

    ci = "ci"
    std = "std"
    none = "none"


@contextmanager
def exit_codes():
    """Bad input: one line per mistake on stderr and exit code 2; an output that cannot be
    written (full disk, read-only, forbidden): one line and exit code 2."""
    try:
        yield
    except BadInput as e:
        from bnexp.views.tables import print_error

        print_error(str(e))
        raise typer.Exit(2) from None
    except OSError as e:
        if e.errno not in _CANNOT_WRITE:
            raise
        from bnexp.views.tables import print_error

        print_error(f"{e.filename or 'output'}: cannot write ({e.strerror})")
        raise typer.Exit(2) from None


# where an output cannot go: a full disk or quota, a read-only or forbidden place. Each
# file is written whole or not at all (runs/atomic.py), so the message is all that's left
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.ENAMETOOLONG}
