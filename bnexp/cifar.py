"""CIFAR-10's "python version" files, read without running anything they hold.

The folder `cifar-10-batches-py` holds `data_batch_1` .. `data_batch_5` (10,000 training
images each) and `test_batch` (10,000): each a pickle (Python 2's cPickle, read with
encoding="bytes") of a dict: b"data", a uint8 array (N, 3072) of N images, channel-major
(1,024 red, 1,024 green, 1,024 blue values, each 32x32 row-major); b"labels", a list of
N ints in 0..9; b"batch_label" and b"filenames", which bnexp does not need.

The trap: unpickling runs code. A pickle names any importable callable (os.system,
builtins.eval, subprocess.Popen) and has it called with arguments of its choosing, so a
dataset file from elsewhere could do anything `pickle.load` can. Here the unpickler
imports nothing: `find_class` answers the few globals numpy's pickle of a plain uint8
array names (`numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`;
numpy 2's `numpy._core` spelling; `_codecs.encode`, with which Python 3 writes bytes at
protocol 2; `numpy.core.numeric._frombuffer` of protocol 5) with stand-ins of bnexp's own
that check their arguments and build a read-only uint8 array from the bytes, and refuses
every other global: bad input (DataError, exit 2), with nothing of the file run.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np

from bnexp.errors import DataError
from bnexp.safeopen import TooLarge, read_bounded

FOLDER = "cifar-10-batches-py"  # what cifar-10-python.tar.gz extracts to
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
SIDE, CHANNELS = 32, 3
PIXELS = SIDE * SIDE * CHANNELS  # 3,072 values a row of b"data"
NUM_CLASSES = 10
MAX_BATCH_BYTES = 128 << 20  # a real batch file is 31 MB (61 MB if Python 3 wrote it at
# protocol 2: its bytes as UTF-8 text)
MAX_DIMS = 4  # b"data" is (N, 3072); an array of more dimensions is no image batch


class Refused(pickle.UnpicklingError):
    """The pickle asked for something a CIFAR-10 batch does not hold."""


class _NdarrayClass:
    """What `numpy.ndarray` stands for here: only _reconstruct's first argument."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayClass()
_ENDIANNESS = {"|", "<", ">", "=", b"|", b"<", b">", b"="}
_UINT8 = {"u1", "|u1", "uint8", "B", b"u1", b"|u1", b"uint8", b"B"}


class _DType:
    """numpy.dtype(...) of a pickle: only uint8, with numpy's state of a plain dtype."""

    def __setstate__(self, state):
        if (not isinstance(state, tuple) or len(state) < 5 or state[0] not in (3, 4)
                or state[1] not in _ENDIANNESS or state[2:5] != (None, None, None)):
            raise Refused("a dtype state that is not a plain uint8's")


class _Array:
    """What numpy's _reconstruct gives: an empty array that BUILD then fills from its
    state (version, shape, dtype, Fortran order, the bytes)."""

    array: np.ndarray | None = None

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise Refused("an array state that is not numpy's (shape, dtype, order, bytes)")
        shape, dtype, fortran, raw = state
        self.array = _uint8_array(raw, dtype, shape, "F" if fortran else "C")


class _Budget:
    """The bytes _codecs.encode may make, all together: the file's size. The trap: a
    pickle can call it on one memoized string again and again, a copy each time."""

    def __init__(self, limit: int):
        self.left = limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise Refused("more data than the file holds")


def _uint8_array(raw, dtype, shape, order) -> np.ndarray:
    """A uint8 array over raw's bytes (a view, not a copy), after checking every part."""
    if not isinstance(dtype, _DType):
        raise Refused(f"an array whose dtype is {_shown(dtype)}")
    if (not isinstance(shape, tuple) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d < 2**63 for d in shape)):
        raise Refused(f"an array of shape {_shown(shape)}: not up to {MAX_DIMS} sizes "
                      "below 2**63")
    if not isinstance(raw, bytes | bytearray):
        raise Refused(f"an array whose data is {type(raw).__name__}, not bytes")
    if len(raw) != math.prod(shape):  # exact: np.prod would wrap round at 2**63
        raise Refused(f"an array of shape {shape} with {len(raw):,} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape, order=order)


def _shown(value) -> str:
    """A value in a message: short, and never the repr of something large (a huge int's
    or a nested tuple's repr could take minutes, or raise)."""
    def small(v) -> bool:
        return (isinstance(v, str | bytes) and len(v) <= 40) or (
            isinstance(v, int) and abs(v) < 2**63)

    if small(value) or (isinstance(value, tuple) and len(value) <= 8
                        and all(small(v) for v in value)):
        return repr(value)
    return f"a {type(value).__name__}"


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, tuples, bytes, strings and numbers, and a
    plain uint8 ndarray through bnexp's stand-ins; every other global is Refused."""

    def __init__(self, file, budget: int):
        super().__init__(file, encoding="bytes")
        self._budget = _Budget(budget)

    def find_class(self, module: str, name: str):
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): self._dtype,
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): self._frombuffer,
            ("_codecs", "encode"): self._latin1,
        }
        if (module, name) not in allowed:
            raise Refused(f"it asks for {f'{module}.{name}'[:100]}, which a CIFAR-10 "
                          "batch does not hold; nothing of it was run")
        return allowed[(module, name)]

    def persistent_load(self, pid):
        raise Refused("it refers to a persistent object")

    @staticmethod
    def _reconstruct(cls, shape, typecode):
        if cls is not _NDARRAY:
            raise Refused(f"_reconstruct of {_shown(cls)}, not of numpy.ndarray")
        return _Array()

    @staticmethod
    def _dtype(name, align=False, copy=True):
        if not isinstance(name, str | bytes) or name not in _UINT8:
            raise Refused(f"an array of dtype {_shown(name)}, not uint8")
        return _DType()

    @staticmethod
    def _frombuffer(buffer, dtype, shape, order):
        if order not in ("C", "F", b"C", b"F"):
            raise Refused(f"an array of order {_shown(order)}")
        array = _Array()
        array.array = _uint8_array(buffer, dtype, shape, "F" if order in ("F", b"F") else "C")
        return array

    def _latin1(self, text, encoding):
        """_codecs.encode(text, "latin1"): Python 3's bytes at protocol 2."""
        if not isinstance(text, str) or encoding != "latin1":
            raise Refused("_codecs.encode other than of a string to latin1")
        self._budget.spend(len(text))
        return text.encode("latin1")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images uint8 (N, 32, 32, 3) and labels int32 (N,); DataError,
    naming the file and what is wrong, if it is not one whole CIFAR-10 batch."""
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise TooLarge()
        raw = read_bounded(path, MAX_BATCH_BYTES)
    except TooLarge:
        raise DataError(f"{path}: more than {MAX_BATCH_BYTES:,} bytes: not a "
                        "CIFAR-10-sized batch file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or type(e).__name__}") from None
    try:
        batch = BatchUnpickler(io.BytesIO(raw), budget=len(raw)).load()
    except Refused as e:
        raise DataError(f"{path}: not a CIFAR-10 batch: {e}") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many kinds (EOFError,
        # UnpicklingError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
        # MemoryError, ...): all mean the same
        detail = str(e).splitlines()[0][:200] if str(e) else "damaged"
        raise DataError(f"{path}: not a readable CIFAR-10 batch (a pickle): "
                        f"{type(e).__name__}: {detail}") from None
    return _contents(batch, path)


def _contents(batch, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images (NHWC) and labels of an unpickled batch, every part checked."""
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch: the pickle holds a "
                        f"{type(batch).__name__}, not a dict")
    keys = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()
            if isinstance(k, bytes | str)}
    for key in ("data", "labels"):
        if key not in keys:
            raise DataError(f"{path}: not a CIFAR-10 batch: no key b{key!r} (it has "
                            f"{sorted(map(str, keys))[:8]})")
    data, labels = keys["data"], keys["labels"]
    if not isinstance(data, _Array) or data.array is None:
        raise DataError(f"{path}: b'data' is {_shown(data)}, not a uint8 array")
    x = data.array
    if x.ndim != 2 or x.shape[1] != PIXELS or x.shape[0] == 0:
        raise DataError(f"{path}: b'data' has shape {x.shape}, not (N, {PIXELS}): N "
                        f"images of {SIDE}x{SIDE}x{CHANNELS}")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise DataError(f"{path}: b'labels' is not a list of ints")
    if len(labels) != len(x):
        raise DataError(f"{path}: {len(x):,} images but {len(labels):,} labels")
    if min(labels) < 0 or max(labels) >= NUM_CLASSES:
        raise DataError(f"{path}: b'labels' outside 0..{NUM_CLASSES - 1}")
    images = x.reshape(len(x), CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int32)


def batch_folder(folder: Path) -> Path | None:
    """The folder holding the batch files: `folder`, or its `cifar-10-batches-py` (where
    the archive extracts to; Keras 3 extracts into datasets/cifar-10-batches-py-target/);
    None if neither holds any."""
    for candidate in (folder, folder / FOLDER):
        if any((candidate / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
            return candidate
    return None


def read_folder(folder: Path):
    """(x_train, y_train, x_test, y_test) of the five training batches and the test batch
    in `folder` (or its cifar-10-batches-py), None if it holds none of them; DataError if
    some are missing or any is not a CIFAR-10 batch."""
    where = batch_folder(folder)
    if where is None:
        return None
    missing = [n for n in (*TRAIN_FILES, TEST_FILE) if not (where / n).is_file()]
    if missing:
        raise DataError(f"{where}: incomplete cifar10 files, missing {missing}")
    train = [read_batch(where / name) for name in TRAIN_FILES]
    x_test, y_test = read_batch(where / TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test
