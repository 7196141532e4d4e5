"""Writing a file whole or not at all: one file (`replace_atomically`), or several at once
(`write_files`, `write_folder`: every one checked and staged before the first lands),
and the checks before (`check_writable_file`). Run folders and every output use these.

The trap every writer here avoids: a reader (compare, a second process, a resume after
a kill) must never see half a file, and a write must never replace what is not a
regular file (a folder, /dev/null) nor a run folder's own file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from bnexp.errors import BadInput
from bnexp.safeopen import path_problem


def check_writable_file(path: Path, option: str) -> None:
    """BadInput naming the option unless `path` can be written (what it names is absent or
    a regular file, and its folder takes a file): checked before any output is written,
    so a command writes all or nothing."""
    check_possible(path, option)
    try:
        target = writable_target(path)
    except OSError as e:
        raise BadInput(f"{path}: {option}: cannot write ({e.strerror})") from None
    folder = target.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{path}: {option}: cannot write (its folder does not exist or is "
                       "not writable)")


def check_possible(path: Path, option: str) -> None:
    """BadInput naming the option where no OS could open `path` (a NUL character, a name
    or path too long: safeopen.path_problem); the CLI and the API refuse such paths as
    they get them, this keeps every output's own check whole (a NUL reached realpath)."""
    problem = path_problem(path)
    if problem:
        raise BadInput(f"{option}: {problem}")


def writable_target(path: Path) -> Path:
    """The file that writing `path` replaces: `path`, or the file its symbolic links lead
    to (the link stays a link). OSError if that exists and is not a regular file.

    The trap: a write is a rename of a temp file over the target, so a folder, device,
    FIFO or socket there would be replaced by a regular file: `--out /dev/null` as root
    once turned the machine's /dev/null into one."""
    target = Path(os.path.realpath(path))  # a symlink loop is left unresolved: refused below
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OSError(errno.EINVAL, f"not a regular file but {_kind(target)}", str(path))
    return target


def _kind(path: Path) -> str:
    """What a path that is not a regular file is, in words."""
    if path.is_symlink():
        return "a symbolic link loop"
    mode = path.stat().st_mode
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    return next((name for test, name in kinds.items() if test(mode)), "some other kind of file")


def make_folder(path: Path, option: str) -> None:
    """The folder `path` (and its parents), or BadInput naming the option that gave it."""
    check_possible(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{path}: {option}: cannot create the folder ({e.strerror})") from None


def write_folder(out_dir: Path, files: dict[str, bytes], option: str) -> list[Path]:
    """files ({name: bytes}) written into out_dir, created where missing; all or nothing:
    every target is checked first, and on a failure the files written and the folders
    created are removed again. BadInput naming the option where one cannot be written."""
    check_possible(out_dir, option)  # before exists() below: it raises on such a path
    missing = [p for p in (out_dir, *out_dir.parents) if not p.exists() and not p.is_symlink()]
    try:
        make_folder(out_dir, option)  # inside: a name too long fails after its parents
        write_files([(out_dir / name, data, option) for name, data in files.items()])
    except BaseException:
        for folder in missing:  # the deepest first; a folder someone else filled stays
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError as e:
                if e.errno != errno.ENAMETOOLONG:  # never made: its parents were
                    break
        raise
    return [out_dir / name for name in files]


def write_files(files: list[tuple[Path, bytes, str]]) -> None:
    """Each file ([(path, bytes, option)]) written atomically, all or nothing: every
    target is checked before the first is written, and every new content is staged
    (written and fsynced beside its target) before the first is renamed into place, so
    that a disk full half way leaves every old file as it was. BadInput naming the file
    and its option."""
    seen: dict[str, str] = {}
    for path, _, option in files:
        check_writable_file(path, option)
        real = os.path.realpath(path)
        if real in seen:  # --out x --plot x: the second would replace the first
            raise BadInput(f"{path}: {option}: the same file as {seen[real]}")
        seen[real] = option
        if _a_run_file(Path(real)):
            raise BadInput(f"{path}: {option}: a run folder's own file (its folder holds "
                           "summary.json): write elsewhere")
    staged, created = [], []
    try:
        for path, data, option in files:
            try:
                staged.append((*stage(path, lambda f, data=data: f.write(data)), path, option))
            except OSError as e:
                raise BadInput(f"{path}: {option}: cannot write ({e.strerror})") from None
        for tmp, target, path, option in staged:
            new = not target.exists()
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise BadInput(f"{path}: {option}: cannot write ({e.strerror})") from None
            if new:
                created.append(target)
    except BaseException:
        for tmp, *_ in staged:
            Path(tmp).unlink(missing_ok=True)
        for path in created:  # where a rename failed after others: the new files go
            path.unlink(missing_ok=True)
        raise


RUN_FILES = {"summary.json", "metrics.csv", "config.yaml", "checkpoint.npz", "train.log",
             "steps.csv", "activations.csv", "drift.csv", "grad_norms.csv", "weight_norms.csv",
             "predictiveness.csv", "eval.csv"}  # what training and `bnexp eval` write there


def _a_run_file(path: Path) -> bool:
    """Whether `path` is one of a run folder's own files: an output there would replace
    the run's data (`compare --out RUN/summary.json` made the run unreadable)."""
    return path.name in RUN_FILES and (path.parent / "summary.json").is_file()



def replace_atomically(path: Path, write) -> None:
    """Write a file so that a reader or a kill sees the old file or the new one, never half.

    write(f) fills a binary file object; it goes to a temp file in the same folder,
    is fsynced and renamed over `path` (or over the file a symbolic link `path` leads
    to). OSError, writing nothing, where that is not a regular file (writable_target).
    """
    tmp, target = stage(path, write)
    try:
        os.replace(tmp, target)
    except OSError as e:  # name the file meant, not the temp file
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None


def stage(path: Path, write) -> tuple[str, Path]:
    """replace_atomically's first half: (temp file, target), the temp file beside the
    target filled by write(f) and fsynced; os.replace(temp, target) is the second. A
    caller writing several files stages them all before it renames one, so that a full
    disk half way leaves every old file as it was. The temp file's name holds at most
    64 characters of the target's (a 250-byte name would have passed 255 with them)."""
    target = writable_target(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:64]}.",
                                   suffix=target.suffix[:16])
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a normal file follows the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # name the file meant, not the temp file
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, target


def write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
