"""Import TensorFlow without its C++ start-up notices on the terminal, without the
modules Keras loads for what bnexp never uses, with XLA's persistent compilation cache.

TensorFlow's native code prints "oneDNN custom operations are on" (twice) through
absl before any log level applies, straight to file descriptor 2, so neither
TF_CPP_MIN_LOG_LEVEL nor Python's sys.stderr can hold it back. The import runs
with fd 2 pointed at /dev/null; a failing import still raises as usual.

XLA compiles each step for each input shape (~1-3 s per LeNet run): the cache keeps
the compiled code on disk, so the next run, process or smoke run of the same model
loads it instead. It lives in $BNEXP_XLA_CACHE (`off`: none; `on`: the default), by default
~/.cache/bnexp/xla/<TensorFlow version>-<CPU>: compiled code is for one CPU, and a
home directory shared by a cluster's machines must not mix them. The trap: TensorFlow
reads TF_XLA_FLAGS once, when it loads, so the flag is set before the import (and a
child process inherits it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path


def import_tensorflow():
    """Import and return the tensorflow module, quietly. Cheap when it is already loaded."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        # 3: no C++ errors either. Each executable loaded from the XLA cache logs two
        # harmless ones (a text-format parse tried before the binary one; a CPU check
        # that mistakes XLA's tuning hints for missing features); real failures raise
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    use_xla_cache()
    with silenced(2), hidden(*UNUSED_BY_KERAS):
        import tensorflow
    tensorflow.get_logger().addFilter(_no_retracing_warning)
    return tensorflow


def _no_retracing_warning(record) -> bool:
    """Drop TensorFlow's "N out of the last M calls to <Steps.eager_train_many> triggered
    tf.function retracing": it counts the calls of one method across every Steps object,
    so a sweep over several models (or `bnexp train a.yaml b.yaml`) sets it off, although
    each model is traced once, on purpose (steps of the same model are reused: see
    training/compiled.py)."""
    return "triggered tf.function retracing" not in record.getMessage()


# Keras imports these at start-up for what bnexp never asks of it (pandas inputs to fit,
# pyplot image galleries): 0.7 s of TensorFlow's ~4 s import, measured with -X importtime
UNUSED_BY_KERAS = ("pandas", "matplotlib")


@contextlib.contextmanager
def hidden(*names: str):
    """Inside the block, importing a module `names` lists that is not loaded yet fails with
    ImportError (which Keras catches: it then does without); after it, it imports as usual.
    The trap: a module imported inside the block keeps its "not there"."""
    hide = [name for name in names if name not in sys.modules]
    for name in hide:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hide:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


def use_xla_cache() -> Path | None:
    """Point TF_XLA_FLAGS at the persistent XLA cache (made if missing) unless it names
    one already or BNEXP_XLA_CACHE is `off`; the folder used, or None. A folder whose
    path holds a space is not used (TensorFlow would cut the flag there and cache
    somewhere else): XLA then compiles as without a cache."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "persistent_cache_directory" in flags:
        return None
    folder = xla_cache_dir()
    if folder is None or any(c.isspace() for c in str(folder)):
        return None  # TF_XLA_FLAGS is split at spaces: such a folder cannot be named there
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile as before
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()
    return folder


# BNEXP_XLA_CACHE values that are switches, not folder names. The trap they close:
# `BNEXP_XLA_CACHE=on` once filled a folder named `on` in the working tree (and git)
CACHE_OFF = frozenset({"off", "no", "false", "0", "none"})
CACHE_DEFAULT = frozenset({"on", "yes", "true", "1", "default", ""})


def xla_cache_dir() -> Path | None:
    """Where compiled XLA code is kept for this TensorFlow on this CPU; None: off. A
    relative folder is taken from the current one, once, so that a sweep's workers
    started elsewhere share it. BadInput where ~user names no user."""
    chosen = os.environ.get("BNEXP_XLA_CACHE", "").strip()
    if chosen.lower() in CACHE_OFF:
        return None
    if chosen.lower() not in CACHE_DEFAULT:
        try:
            return Path(chosen).expanduser().absolute()
        except RuntimeError:  # ~user of a user that does not exist
            from bnexp.errors import BadInput

            raise BadInput(f"$BNEXP_XLA_CACHE: {chosen}: no such user's home folder") from None
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bnexp" / "xla" / f"tf{version}-{_cpu_id()}"


def _cpu_id() -> str:
    """A short hash of the CPU's model and instruction-set flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        text = ""
    return hashlib.sha256(f"{platform.machine()}\n{text}".encode()).hexdigest()[:12]


@contextlib.contextmanager
def silenced(*fds: int):
    """File descriptors `fds` (1 stdout, 2 stderr) point at /dev/null inside the block:
    what native code and Python print there is dropped; exceptions pass as usual."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
