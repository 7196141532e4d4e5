"""Import TensorFlow without its C++ start-up notices on the terminal.

TensorFlow's native code prints "oneDNN custom operations are on" (twice) through
absl before any log level applies, straight to file descriptor 2, so neither
TF_CPP_MIN_LOG_LEVEL nor Python's sys.stderr can hold it back. The import runs
with fd 2 pointed at /dev/null; a failing import still raises as usual.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """Import and return the tensorflow module, quietly. Cheap when it is already loaded."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
