"""Import TensorFlow without its C++ start-up notices on the terminal, without the
modules Keras loads for what bnexp never uses, with XLA's persistent compilation cache
switched on (bnexp/xlacache.py) before TensorFlow loads.

TensorFlow's native code prints "oneDNN custom operations are on" (twice) through
absl before any log level applies, straight to file descriptor 2, so neither
TF_CPP_MIN_LOG_LEVEL nor Python's sys.stderr can hold it back. The import runs
with fd 2 pointed at /dev/null; a failing import still raises as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys

from bnexp import xlacache


def import_tensorflow():
    """Import and return the tensorflow module, quietly. Cheap when it is already loaded."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        # 3: no C++ errors either. Each executable loaded from the XLA cache logs two
        # harmless ones (a text-format parse tried before the binary one; a CPU check
        # that mistakes XLA's tuning hints for missing features); real failures raise
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    xlacache.use_xla_cache()
    with silenced(2), hidden(*UNUSED_BY_KERAS):
        import tensorflow
    tensorflow.get_logger().addFilter(_no_retracing_warning)
    return tensorflow


def _no_retracing_warning(record) -> bool:
    """Drop TensorFlow's "N out of the last M calls to <Steps.train_many_body> triggered
    tf.function retracing": it counts the calls of one method across every Steps object,
    so a sweep over several models (or `bnexp train a.yaml b.yaml`) sets it off, although
    each model is traced once, on purpose (steps of the same model are reused: see
    bnexp/training/compiled.py)."""
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
