"""XLA's persistent compilation cache: where compiled XLA code is kept between runs and
processes, and the TF_XLA_FLAGS that point TensorFlow at it. What it buys, where it
lives and how to move or switch it off: docs/performance.md#xlas-persistent-cache.

The trap: TensorFlow reads TF_XLA_FLAGS once, when it loads, so `use_xla_cache` must
run before TensorFlow's import (bnexp/tfquiet.py calls it; a child process inherits
the flag). This module imports no TensorFlow: the sweep checks $BNEXP_XLA_CACHE before
any worker starts.
"""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path


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
    """Where compiled XLA code is kept for this TensorFlow on this CPU; None: off, or no
    folder to keep it in (no absolute XDG_CACHE_HOME or HOME; a relative
    BNEXP_XLA_CACHE in a working folder that was deleted). A relative BNEXP_XLA_CACHE is
    taken from the current folder, once, so that a sweep's workers started elsewhere
    share it. BadInput where ~user names no user."""
    chosen = os.environ.get("BNEXP_XLA_CACHE", "").strip()
    if chosen.lower() in CACHE_OFF:
        return None
    if chosen.lower() not in CACHE_DEFAULT:
        try:
            return Path(chosen).expanduser().absolute()
        except RuntimeError:  # ~user of a user that does not exist
            from bnexp.errors import BadInput

            raise BadInput(f"$BNEXP_XLA_CACHE: {chosen}: no such user's home folder") from None
        except FileNotFoundError:  # relative, and the working folder was deleted: none
            return None
    base = cache_home()
    if base is None:
        return None
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return base / "bnexp" / "xla" / f"tf{version}-{_cpu_id()}"


def cache_home() -> Path | None:
    """$XDG_CACHE_HOME, else ~/.cache; None where neither is an absolute path. The trap:
    a relative XDG_CACHE_HOME (or HOME) put the cache into the working folder, wherever
    bnexp was started; the XDG spec says a relative value is to be ignored."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg)
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no password entry: nowhere to keep it
        return None
    return home / ".cache" if home.is_absolute() else None


def _cpu_id() -> str:
    """A short hash of the CPU's model and instruction-set flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        text = ""
    return hashlib.sha256(f"{platform.machine()}\n{text}".encode()).hexdigest()[:12]
