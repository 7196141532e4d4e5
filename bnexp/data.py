"""Datasets: MNIST and Fashion-MNIST from IDX files (or Keras' mnist.npz), CIFAR-10 from
its python-version batches (bnexp.cifar), and a synthetic set.

Images come back as uint8 NHWC pixels (0-255, as the files store them: a quarter of
the memory of float32; C = 1 grey, C = 3 colour for CIFAR-10) and labels as int32; the
training and evaluation steps scale each batch to [0, 1] on the device
(`bnexp.model.build.to_unit`). Where the files are looked for, in order: `data.path`
(when set, only there), `$BNEXP_DATA_DIR/<name>`, the Keras cache (`$KERAS_HOME` or
`~/.keras`, `datasets/...`), `/usr/share/datasets/<name>`; then `keras.datasets` is
asked to download, unless `$BNEXP_NO_DOWNLOAD` is set (the tests set it).
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnexp import cifar
from bnexp.config import NUM_CLASSES, DataConfig, input_shape
from bnexp.errors import DataError
from bnexp.safeopen import NAME_MAX, PATH_MAX, too_long_for_a_path
from bnexp.tfquiet import import_tensorflow, silenced

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
FOLDER_NAMES = {"fashion_mnist": ["fashion-mnist", "fashion_mnist"], "mnist": ["mnist"],
                "cifar10": ["cifar10", cifar.FOLDER]}
INSTALL_HINT = {
    "fashion_mnist": "install Debian's package: apt-get install dataset-fashion-mnist",
    "mnist": "put the four MNIST IDX .gz files (or Keras' mnist.npz) in a folder and set "
    "data.path or $BNEXP_DATA_DIR/mnist",
    "cifar10": "extract CIFAR-10's python version (cifar-10-python.tar.gz, "
    "https://www.cs.toronto.edu/~kriz/cifar.html) and set data.path to its "
    "cifar-10-batches-py folder, or put that folder in $BNEXP_DATA_DIR",
}
MAX_IDX_BYTES = 256 << 20  # MNIST's largest file is 47 MB
CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"],
    "mnist": None,  # digits: the label is the name
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
    "synthetic": None,
}


@dataclass
class Splits:
    """Train / validation / test arrays. x: uint8 (N, H, W, C) pixels, C = 1 (grey) or 3
    (colour, RGB); y: int32 (N,).

    The trap: x is not yet scaled; models take to_unit(x) (bnexp/model/build.py), floats in [0, 1].
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load(cfg: DataConfig, source: str = "config") -> Splits:
    """The dataset `cfg` names, split, limited and padded. DataError if it cannot be read."""
    if cfg.dataset == "synthetic":
        x_train, y_train, x_test, y_test = synthetic()
        origin = "synthetic"
    else:
        x_train, y_train, x_test, y_test, origin = _find_and_read(cfg, source)
        check_arrays(x_train, y_train, x_test, y_test, origin, input_shape(cfg)[2])
    splits = split(x_train, y_train, x_test, y_test, cfg, source)
    splits.source = origin
    return splits


def split(x_train, y_train, x_test, y_test, cfg: DataConfig, source: str = "config") -> Splits:
    """The validation examples held out from the start (Geron's split) or the end (Keras'
    validation_split); then the training set cut to `limit`, the test set to `test_limit`."""
    n_val = cfg.validation_size
    if n_val >= len(x_train):
        raise DataError(
            f"{source}: data.validation_size: {n_val} leaves no training examples "
            f"(the training set has {len(x_train)})"
        )
    cut = n_val if cfg.validation_from == "start" else len(x_train) - n_val
    held, kept = (slice(0, cut), slice(cut, None))[:: 1 if cfg.validation_from == "start" else -1]
    x_val, y_val = x_train[held], y_train[held]
    x_train, y_train = x_train[kept][: cfg.limit], y_train[kept][: cfg.limit]
    if cfg.batch_size > len(x_train):
        raise DataError(
            f"{source}: data.batch_size: {cfg.batch_size} is larger than the "
            f"{len(x_train)} training examples"
        )
    x_test, y_test = x_test[: cfg.test_limit], y_test[: cfg.test_limit]
    parts = [_images(x, cfg.pad_to, cfg.resize_to) for x in (x_train, x_val, x_test)]
    labels = [np.asarray(y, dtype=np.int32) for y in (y_train, y_val, y_test)]
    return Splits(parts[0], labels[0], parts[1], labels[1], parts[2], labels[2], source="")


def _images(x: np.ndarray, pad_to: int | None, resize_to: int | None = None) -> np.ndarray:
    """uint8 (N, h, h) or (N, h, h, C) -> uint8 (N, H, H, C), zero-padded to pad_to or
    resized to resize_to (every channel alike)."""
    x = np.asarray(x, dtype=np.uint8)
    x = x[..., None] if x.ndim == 3 else x
    if resize_to and resize_to != x.shape[1]:
        return resize_bilinear(x, resize_to)
    if pad_to:
        before = (pad_to - x.shape[1]) // 2
        after = pad_to - x.shape[1] - before
        x = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    return x


def resize_bilinear(x: np.ndarray, size: int, chunk: int = 2000) -> np.ndarray:
    """uint8 (N, h, h, C) -> uint8 (N, size, size, C), as tf.image.resize_with_pad(x, size,
    size) gives for a square image: bilinear with half-pixel centres, no antialiasing,
    rounded back to uint8 (at most half a grey level from TensorFlow's float result)."""
    rows, weights = _bilinear_taps(x.shape[1], size)
    out = np.empty((len(x), size, size, x.shape[3]), np.uint8)
    for start in range(0, len(x), chunk):  # a float copy of a chunk, not of the dataset
        part = x[start : start + chunk].astype(np.float32)
        part = part[:, rows[0]] * weights[0][:, None] + part[:, rows[1]] * weights[1][:, None]
        part = part[:, :, rows[0]] * weights[0] + part[:, :, rows[1]] * weights[1]
        out[start : start + chunk] = np.clip(np.rint(part), 0, 255)
    return out


def _bilinear_taps(size_in: int, size_out: int):
    """For each output position, the two input positions and their weights."""
    centre = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
    centre = np.clip(centre, 0, size_in - 1)
    low = np.floor(centre).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    frac = (centre - low).astype(np.float32)
    return (low, high), ((1 - frac)[:, None], frac[:, None])


def epoch_order(rng: np.random.Generator, n: int, shuffle_buffer: int | None) -> np.ndarray:
    """The order of an epoch's n training examples: a fresh permutation, or, with a buffer,
    the order tf.data's shuffle(buffer) gives (take a random example of the buffer, refill
    it with the next one), so a small buffer leaves the data nearly in file order."""
    if not shuffle_buffer or shuffle_buffer >= n:
        return rng.permutation(n)
    buffer, order, upcoming = list(range(shuffle_buffer)), [], shuffle_buffer
    picks = rng.integers(0, np.iinfo(np.int64).max, size=n)
    for pick in picks:
        i = int(pick % len(buffer))
        order.append(buffer[i])
        if upcoming < n:
            buffer[i] = upcoming
            upcoming += 1
        else:
            buffer[i] = buffer[-1]
            buffer.pop()
    return np.asarray(order)


# ---------------------------------------------------------------- finding files


def candidate_folders(cfg: DataConfig) -> list[Path]:
    """Where the dataset's files are looked for, in order."""
    if cfg.path:
        return [_home_expanded(cfg.path, "data.path")]
    names = FOLDER_NAMES[cfg.dataset]
    folders = []
    if os.environ.get("BNEXP_DATA_DIR"):
        data_dir = _home_expanded(os.environ["BNEXP_DATA_DIR"], "$BNEXP_DATA_DIR")
        folders += [data_dir / n for n in names]
    keras_home = _home_expanded(os.environ.get("KERAS_HOME", "~/.keras"), "$KERAS_HOME")
    folders += [keras_home / "datasets" / n for n in names]
    if cfg.dataset == "mnist":
        folders.append(keras_home / "datasets")  # keras.datasets.mnist keeps mnist.npz here
    if cfg.dataset == "cifar10":  # Keras 3 extracts cifar-10-batches-py into this folder
        folders.append(keras_home / "datasets" / f"{cifar.FOLDER}-target")
    folders += [Path("/usr/share/datasets") / n for n in names]
    return folders


def _home_expanded(path: str, name: str) -> Path:
    """`path` with ~ expanded; DataError naming where it came from (a config key or an
    environment variable) if ~user has no home or the path is too long to be one."""
    try:
        expanded = Path(path).expanduser()
    except RuntimeError:  # ~user of a user that does not exist
        raise DataError(f"{name}: {path}: no such user's home folder") from None
    if too_long_for_a_path(expanded):
        raise DataError(f"{name}: {path[:100]}...: too long for a path (names up to "
                        f"{NAME_MAX} bytes, paths up to {PATH_MAX})")
    return expanded


def _find_and_read(cfg: DataConfig, source: str):
    folders = candidate_folders(cfg)
    for folder in folders:
        found = _read_folder(folder, cfg.dataset)
        if found is not None:
            return (*found, str(folder))
    if not cfg.path and not os.environ.get("BNEXP_NO_DOWNLOAD"):
        arrays = _download(cfg.dataset)
        if arrays is not None:
            return (*arrays, "keras.datasets")
    key = "data.path" if cfg.path else "data.dataset"
    looked = ", ".join(str(f) for f in folders)
    raise DataError(
        f"{source}: {key}: no {cfg.dataset} files found (looked in {looked}); "
        f"{INSTALL_HINT[cfg.dataset]}"
    )


def _read_folder(folder: Path, dataset: str):
    """(x_train, y_train, x_test, y_test) from a folder, or None if it has no such files."""
    if dataset == "cifar10":
        return cifar.read_folder(folder)
    if dataset == "mnist" and (folder / "mnist.npz").is_file():
        return read_npz(folder / "mnist.npz")
    paths = {k: _idx_path(folder, name) for k, name in IDX_FILES.items()}
    if not any(paths.values()):
        return None
    missing = [IDX_FILES[k] + ".gz" for k, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{folder}: incomplete {dataset} files, missing {missing}")
    return (
        read_idx(paths["train_images"], IDX_IMAGES),
        read_idx(paths["train_labels"], IDX_LABELS),
        read_idx(paths["test_images"], IDX_IMAGES),
        read_idx(paths["test_labels"], IDX_LABELS),
    )


def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


MAX_IDX_DIMS = 4  # images are (N, H, W), labels (N,); numpy takes at most 64


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (gzipped or not) as a uint8 array; DataError if it is not one whole."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'corrupt'}") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path}: more than {MAX_IDX_BYTES:,} bytes: not an MNIST-sized file")
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        got = data[:4].hex() if len(data) >= 4 else "nothing"
        raise DataError(f"{path}: not an IDX file of this kind (magic {got}, want {magic:08x})")
    ndim = data[3]
    if ndim > MAX_IDX_DIMS or len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: not an IDX file of this kind ({ndim} dimensions, "
                        f"{len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(shape):  # exact: np.prod would wrap round at 2**63
        raise DataError(
            f"{path}: truncated or oversized: {len(body)} bytes of data for shape {shape}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def read_npz(path: Path):
    """Keras' mnist.npz cache: x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    except Exception as e:  # noqa: BLE001 - zip and npy decoders raise many kinds on damage
        # (BadZipFile, RuntimeError "encrypted", NotImplementedError for a compression
        # method, zlib.error, EOFError, ...): all mean the same
        raise DataError(f"{path}: not a readable Keras mnist.npz: {type(e).__name__}"
                        ) from None


def check_arrays(x_train, y_train, x_test, y_test, where: str, channels: int = 1) -> None:
    """DataError naming `where` unless the arrays are a classification dataset bnexp can
    train on: images (N, H, W) or (N, H, W, 1) of 0..255 (channels 3: (N, H, W, 3)), the
    same H x W for training and test; one integer label in 0..9 per image. The one check
    of every source's contents."""
    for name, x, y in (("training", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        grey = x.ndim == 3 and channels == 1
        if not (grey or (x.ndim == 4 and x.shape[3] == channels)) or len(x) == 0:
            want = "(N, H, W)" if channels == 1 else f"(N, H, W, {channels})"
            raise DataError(f"{where}: {name} images have shape {x.shape}, not {want}")
        if not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() > 255:
            raise DataError(f"{where}: {name} images are not 8-bit pixels (0..255)")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where}: {len(x):,} {name} images but {y.size:,} labels")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{where}: {name} labels outside 0..{NUM_CLASSES - 1}")
    if np.shape(x_train)[1:3] != np.shape(x_test)[1:3]:
        raise DataError(f"{where}: training images are {np.shape(x_train)[1:3]}, test images "
                        f"{np.shape(x_test)[1:3]}: they must be the same size")


def _download(dataset: str):
    """Last resort: keras.datasets (which downloads into the Keras cache). None on failure.

    The trap: importing Keras and asking it to download writes: TensorFlow's start-up
    lines on stderr, a "Downloading" line on stdout (where bnexp prints only run
    folders), `~/.keras/keras.json` and `datasets/`. Both streams are silenced, and a
    Keras home that did not exist before a failed attempt is removed again."""
    keras_home = _home_expanded(os.environ.get("KERAS_HOME", "~/.keras"), "$KERAS_HOME")
    existed = keras_home.exists()
    print(f"bnexp: no {dataset} files here; asking keras.datasets to download them",
          file=sys.stderr)
    try:
        with silenced(1, 2):
            keras = import_tensorflow().keras
            module = {"fashion_mnist": keras.datasets.fashion_mnist,
                      "mnist": keras.datasets.mnist, "cifar10": keras.datasets.cifar10}
            (x_train, y_train), (x_test, y_test) = module[dataset].load_data()
        return x_train, np.ravel(y_train), x_test, np.ravel(y_test)  # cifar10's are (N, 1)
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        if not existed:
            shutil.rmtree(keras_home, ignore_errors=True)
        return None


# ---------------------------------------------------------------- synthetic


def synthetic(n_train: int = 1200, n_test: int = 300, seed: int = 1234):
    """A tiny 28x28 10-class set for unit tests: a class-specific blob plus noise.

    Learnable in a few steps, so a test can see training work; fixed seed so every
    test sees the same data (the run's own seed only drives weights and order).
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(6, 22, size=(NUM_CLASSES, 2))
    yy, xx = np.mgrid[0:28, 0:28]

    def make(n):
        y = rng.integers(0, NUM_CLASSES, size=n)
        cy, cx = centres[y, 0, None, None], centres[y, 1, None, None]
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        x = np.clip(blob + rng.normal(0, 0.15, size=(n, 28, 28)), 0, 1)
        return (x * 255).astype(np.uint8), y.astype(np.uint8)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return x_train, y_train, x_test, y_test
