"""Import TensorFlow without its C++ start-up notices on the terminal.

TensorFlow's native code prints "oneDNN custom operations are on" (twice) through
absl before any log level applies, straight to file descriptor 2, so neither
TF_CPP_MIN_LOG_LEVEL nor Python's sys.stderr can hold it back. The import runs
with fd 2 pointed at /dev/null; a failing import still raises as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys


def import_tensorflow():
    """Import and return the tensorflow module, quietly. Cheap when it is already loaded."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with silenced(2):
        import tensorflow
    return tensorflow


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
