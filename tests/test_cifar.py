"""CIFAR-10: the python-version batches read with the restricted unpickler (a hostile
pickle refused with nothing of it run), damaged files as one line of bad data, colour
images through the config, the data pipeline, the models, `plot features` and a run of
the installed script, on small batch files written here in the official format."""

import csv
import json
import os
import pickle
import re
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bnexp import cifar, data
from bnexp.cli import app
from bnexp.config import DataConfig, input_shape
from bnexp.errors import DataError
from tests.helpers import run_bnexp

N_TRAIN, N_TEST = 20, 10  # images per training batch file, in the test batch


# ---------------------------------------------------------------- writing batches


def _int(value: int) -> bytes:
    """A pickle's int opcode, as cPickle writes it at protocol 2."""
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _string(value: bytes) -> bytes:
    """A Python 2 str (bytes under encoding="bytes"): SHORT_BINSTRING or BINSTRING."""
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<i", len(value)) + value


def py2_batch(images: np.ndarray, labels, label: bytes = b"training batch 1 of 5",
              shape=None) -> bytes:
    """A batch as Python 2's cPickle wrote CIFAR-10 (protocol 2): a dict of str keys, the
    numpy array through numpy.core.multiarray._reconstruct, labels a list of ints.
    shape: the array's shape as the pickle states it (default: the images')."""
    rows, cols = shape or images.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int(0) + b"\x85"
             + _string(b"b") + b"\x87R" + b"(" + _int(1) + _int(rows) + _int(cols) + b"\x86"
             + b"cnumpy\ndtype\n" + _string(b"u1") + _int(0) + _int(1) + b"\x87R"
             + b"(" + _int(3) + _string(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb"
             + b"\x89" + _string(images.tobytes()) + b"tb")
    names = b"".join(_string(b"image_%d.png" % i) for i in range(len(images)))
    return (b"\x80\x02}(" + _string(b"data") + array
            + _string(b"labels") + b"](" + b"".join(_int(int(v)) for v in labels) + b"e"
            + _string(b"batch_label") + _string(label)
            + _string(b"filenames") + b"](" + names + b"eu.")


def tiny_cifar(seed: int = 0):
    """Five training batches of N_TRAIN images and a test batch of N_TEST: (rows, labels)
    each, rows uint8 (N, 3072) as the files hold them (channel-major)."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
            for n in [N_TRAIN] * 5 + [N_TEST]]


def write_cifar(folder: Path, batches=None, writer=py2_batch) -> list:
    """A cifar-10-batches-py folder of the official files; returns the batches written."""
    batches = batches or tiny_cifar()
    folder.mkdir(parents=True, exist_ok=True)
    for name, (rows, labels) in zip([*cifar.TRAIN_FILES, cifar.TEST_FILE], batches,
                                    strict=True):
        (folder / name).write_bytes(writer(rows, labels))
    return batches


def as_nhwc(rows: np.ndarray) -> np.ndarray:
    """What bnexp makes of a batch's rows, done the slow, obvious way."""
    out = np.empty((len(rows), 32, 32, 3), np.uint8)
    for i, row in enumerate(rows):
        for c in range(3):
            for r in range(32):
                out[i, r, :, c] = row[c * 1024 + r * 32 : c * 1024 + r * 32 + 32]
    return out


def cfg(folder=None, **kw):
    base = dict(dataset="cifar10", batch_size=4, validation_size=10)
    if folder is not None:
        base["path"] = str(folder)
    return DataConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def batch_bytes():
    rows, labels = tiny_cifar()[0]
    return py2_batch(rows, labels)


# ---------------------------------------------------------------- reading


def test_the_python2_batch_written_here_is_what_pickle_and_numpy_read(batch_bytes):
    """The format the tests write is the real one: the stock unpickler with numpy gives
    the dict CIFAR-10's own instructions describe."""
    rows, labels = tiny_cifar()[0]
    d = pickle.loads(batch_bytes, encoding="bytes")
    assert sorted(d) == [b"batch_label", b"data", b"filenames", b"labels"]
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (N_TRAIN, 3072)
    np.testing.assert_array_equal(d[b"data"], rows)
    assert d[b"labels"] == labels and d[b"filenames"][0] == b"image_0.png"


def test_cifar10_from_the_python_batches_in_data_path(tmp_path):
    batches = write_cifar(tmp_path / "c")
    s = data.load(cfg(tmp_path / "c"))
    assert s.source == str(tmp_path / "c")
    assert s.x_train.shape == (5 * N_TRAIN - 10, 32, 32, 3) and s.x_val.shape == (10, 32, 32, 3)
    assert s.x_test.shape == (N_TEST, 32, 32, 3) and s.input_shape == (32, 32, 3)
    assert s.x_train.dtype == np.uint8 and s.y_train.dtype == np.int32
    rows = np.concatenate([r for r, _ in batches[:5]])
    labels = np.concatenate([lab for _, lab in batches[:5]])
    np.testing.assert_array_equal(s.x_val, as_nhwc(rows[:10]))
    np.testing.assert_array_equal(s.x_train, as_nhwc(rows[10:]))
    np.testing.assert_array_equal(s.y_train, labels[10:])
    np.testing.assert_array_equal(s.x_test, as_nhwc(batches[5][0]))
    np.testing.assert_array_equal(s.y_test, batches[5][1])
    assert input_shape(cfg(tmp_path / "c")) == s.input_shape
    assert len(data.CLASS_NAMES["cifar10"]) == 10 and data.CLASS_NAMES["cifar10"][0] == "airplane"


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_batches_numpy_and_python_3_write_read_alike(tmp_path, protocol):
    """numpy 2's pickle of the same dict (numpy._core; _codecs.encode for bytes at
    protocol 2; _frombuffer at 5), a Fortran-ordered array too, reads as the original."""
    rows, labels = tiny_cifar()[0]
    for array in (rows, np.asfortranarray(rows)):
        file = tmp_path / f"b{protocol}"
        file.write_bytes(pickle.dumps({b"data": array, b"labels": labels,
                                       b"batch_label": b"x"}, protocol=protocol))
        x, y = cifar.read_batch(file)
        np.testing.assert_array_equal(x, as_nhwc(rows))
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("place", ["data.path is the parent", "$BNEXP_DATA_DIR/cifar10",
                                   "$BNEXP_DATA_DIR/cifar-10-batches-py",
                                   "keras cache", "keras 3 cache"])
def test_the_folders_searched(tmp_path, monkeypatch, place):
    target = {"data.path is the parent": tmp_path / "dl" / "cifar-10-batches-py",
              "$BNEXP_DATA_DIR/cifar10": tmp_path / "env" / "cifar10",
              "$BNEXP_DATA_DIR/cifar-10-batches-py": tmp_path / "env" / "cifar-10-batches-py",
              "keras cache": tmp_path / "k" / "datasets" / "cifar-10-batches-py",
              "keras 3 cache": tmp_path / "k" / "datasets" / "cifar-10-batches-py-target"
                                             / "cifar-10-batches-py"}[place]
    write_cifar(target)
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    path = tmp_path / "dl" if place == "data.path is the parent" else None
    assert data.load(cfg(path)).x_test.shape == (N_TEST, 32, 32, 3)


def test_absent_files_are_one_line_exit_2_saying_where_to_put_them(tmp_path, monkeypatch,
                                                                  write_config):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    with pytest.raises(DataError, match=r"data.dataset: no cifar10 files found \(looked in "
                                        r".*cifar-10-batches-py.*\).*data.path"):
        data.load(cfg())
    config = write_config(f"data: {{dataset: cifar10, path: {tmp_path / 'none'}}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no cifar10 files found" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


# ---------------------------------------------------------------- hostile pickles


class Gadget:
    """A pickle whose loading would run `call(*args)` (what pickle.load would do)."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def gadgets(marker: Path) -> dict:
    import builtins
    import subprocess as sp

    code = f"open({str(marker)!r}, 'w').close()"
    return {"os.system": Gadget(os.system, f"touch '{marker}'"),
            "builtins.eval": Gadget(builtins.eval, code),
            "builtins.exec": Gadget(builtins.exec, code),
            "subprocess.Popen": Gadget(sp.Popen, ["touch", str(marker)]),
            "builtins.getattr": Gadget(getattr, sp.Popen, "mro")}


@pytest.mark.parametrize("where", ["data", "labels", "top", "filenames"])
@pytest.mark.parametrize("gadget", ["os.system", "builtins.eval", "builtins.exec",
                                    "subprocess.Popen", "builtins.getattr"])
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, gadget, where):
    marker = tmp_path / "ran"
    evil = gadgets(marker)[gadget]
    rows, labels = tiny_cifar()[0]
    batch = {"data": {b"data": evil, b"labels": labels},
             "labels": {b"data": rows, b"labels": [1, evil]},
             "top": evil,
             "filenames": {b"data": rows, b"labels": labels, b"filenames": [evil]}}[where]
    file = tmp_path / "data_batch_1"
    file.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError) as info:
        cifar.read_batch(file)
    assert str(info.value).startswith(f"{file}: not a CIFAR-10 batch: it asks for ")
    assert "nothing of it was run" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_a_python2_gadget_through_the_cli_is_exit_2_and_runs_nothing(tmp_path, write_config):
    """A Python 2 spelling (GLOBAL 'posix system', as cPickle wrote os.system) in the
    first training batch of an otherwise whole folder."""
    marker = tmp_path / "ran"
    folder = tmp_path / "c"
    write_cifar(folder)
    (folder / "data_batch_1").write_bytes(
        b"\x80\x02cposix\nsystem\n" + _string(f"touch '{marker}'".encode()) + b"\x85R.")
    config = write_config(f"data: {{dataset: cifar10, path: {folder}}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: {folder / 'data_batch_1'}: not a CIFAR-10 "
                                     "batch: it asks for posix.system, which a CIFAR-10 batch "
                                     "does not hold; nothing of it was run")
    assert not marker.exists() and not (tmp_path / "r").exists()


def _numpy_batch(array, labels) -> bytes:
    return pickle.dumps({b"data": array, b"labels": labels}, protocol=2)


def _latin1_bomb(calls: int = 2000) -> bytes:
    """_codecs.encode called again and again on one memoized 4 KB string, every copy kept
    in a list: 8 MB out of a 20 KB file."""
    text = b"a" * 4096
    return (b"\x80\x02c_codecs\nencode\nq\x00X" + struct.pack("<I", len(text)) + text
            + b"q\x01X\x06\x00\x00\x00latin1q\x02](" + b"h\x00h\x01h\x02\x86R" * calls
            + b"e.")


def _damaged(name: str) -> bytes:
    rows, labels = tiny_cifar()[0]
    whole = py2_batch(rows, labels)
    return {
        "empty": b"",
        "truncated": whole[: len(whole) // 2],
        "not a pickle": b"hello, world",
        "a list": pickle.dumps([rows, labels], protocol=2),
        "no labels": pickle.dumps({b"data": rows}, protocol=2),
        "no data": pickle.dumps({b"labels": labels, b"batch_label": b"x"}, protocol=2),
        "int32 data": _numpy_batch(rows.astype(np.int32), labels),
        "object data": _numpy_batch(rows.astype(object), labels),
        "1024 columns": _numpy_batch(rows[:, :1024], labels),
        "3-D data": _numpy_batch(rows.reshape(N_TRAIN, 3, 1024), labels),
        "no images": py2_batch(rows[:0], []),
        "data a list": pickle.dumps({b"data": rows.tolist(), b"labels": labels}, protocol=2),
        "a shape of 2**70": py2_batch(rows, labels, shape=(2**70, 3072)),
        "short data": whole.replace(_string(rows.tobytes()), _string(rows.tobytes()[:-7])),
        "label 10": py2_batch(rows, [*labels[:-1], 10]),
        "label -1": py2_batch(rows, [-1, *labels[1:]]),
        "label 2**70": pickle.dumps({b"data": rows, b"labels": [2**70] * N_TRAIN}, protocol=2),
        "float labels": pickle.dumps({b"data": rows, b"labels": [1.0] * N_TRAIN}, protocol=2),
        "bool labels": pickle.dumps({b"data": rows, b"labels": [True] * N_TRAIN}, protocol=2),
        "fewer labels": py2_batch(rows, labels[:-1]),
        "labels an array": _numpy_batch(rows, np.asarray(labels, np.uint8)),
        "latin1 bomb": _latin1_bomb(),
        "a persistent id": b"\x80\x02U\x01xQ.",
    }[name]


DAMAGE = {"empty": "not a readable CIFAR-10 batch (a pickle): EOFError",
          "truncated": "not a readable CIFAR-10 batch (a pickle)",
          "not a pickle": "not a readable CIFAR-10 batch (a pickle)",
          "a list": "the pickle holds a list, not a dict",
          "no labels": "no key b'labels'",
          "no data": "no key b'data'",
          "int32 data": "an array of dtype 'i4', not uint8",
          "object data": "an array of dtype 'O8', not uint8",
          "1024 columns": "b'data' has shape (20, 1024), not (N, 3072)",
          "3-D data": "b'data' has shape (20, 3, 1024), not (N, 3072)",
          "no images": "b'data' has shape (0, 3072)",
          "data a list": "b'data' is a list, not a uint8 array",
          "a shape of 2**70": "an array of shape a tuple: not up to 4 sizes below 2**63",
          "short data": "an array of shape (20, 3072) with 61,433 bytes of data",
          "label 10": "b'labels' outside 0..9",
          "label -1": "b'labels' outside 0..9",
          "label 2**70": "b'labels' outside 0..9",
          "float labels": "b'labels' is not a list of ints",
          "bool labels": "b'labels' is not a list of ints",
          "fewer labels": "20 images but 19 labels",
          "labels an array": "b'labels' is not a list of ints",
          "latin1 bomb": "more data than the file holds",
          "a persistent id": "it refers to a persistent object"}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_batch_is_one_line_of_bad_data_naming_the_file(tmp_path, damage):
    file = tmp_path / "test_batch"
    file.write_bytes(_damaged(damage))
    with pytest.raises(DataError) as info:
        cifar.read_batch(file)
    message = str(info.value)
    assert message.startswith(f"{file}: ") and "\n" not in message
    assert DAMAGE[damage] in message, message


def test_a_missing_batch_or_a_huge_file_is_bad_data(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    write_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"incomplete cifar10 files, missing \['data_batch_3'\]"):
        data.load(cfg(folder))
    huge = folder / "data_batch_3"
    with open(huge, "wb") as f:  # sparse: nothing written, nothing read
        f.truncate(cifar.MAX_BATCH_BYTES + 1)
    with pytest.raises(DataError, match=rf"^{re.escape(str(huge))}: more than 134,217,728"):
        data.load(cfg(folder))
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)  # a device that says it is empty
    with pytest.raises(DataError, match="more than 1,000 bytes"):
        cifar.read_batch(Path("/dev/zero"))


def test_labels_out_of_range_in_the_test_batch_fail_the_run_up_front(tmp_path, write_config):
    folder = tmp_path / "c"
    batches = tiny_cifar()
    batches[5] = (batches[5][0], [*batches[5][1][:-1], 12])
    write_cifar(folder, batches)
    config = write_config(f"data: {{dataset: cifar10, path: {folder}, batch_size: 8}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "test_batch: b'labels' outside 0..9" in result.output
    assert len(result.output.strip().splitlines()) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"\x80\x02}(" + b),
    st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=8))))
def test_any_bytes_as_a_batch_read_whole_or_are_one_line_of_bad_data(raw):
    """Random bytes, random bytes after a pickle's start, and a whole batch with a few
    bytes overwritten anywhere: the reader gives a batch or a DataError, nothing else."""
    if isinstance(raw, tuple):
        at, patch = raw
        whole = _FUZZ_BASE
        at %= len(whole)
        raw = whole[:at] + patch + whole[at + len(patch):]
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "data_batch_1"
        file.write_bytes(raw)
        try:
            x, y = cifar.read_batch(file)
        except DataError as e:
            assert str(e).startswith(f"{file}: ") and "\n" not in str(e)
            return
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(y) == len(x)
    assert y.min() >= 0 and y.max() <= 9


_FUZZ_BASE = py2_batch(np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251, [3, 7])


# ---------------------------------------------------------------- colour through bnexp


def test_colour_shapes_pad_and_resize_keep_the_channels(tmp_path):
    assert input_shape(cfg()) == (32, 32, 3)
    assert input_shape(cfg(pad_to=40)) == (40, 40, 3)
    assert input_shape(cfg(resize_to=64)) == (64, 64, 3)
    assert input_shape(DataConfig(dataset="mnist", pad_to=32)) == (32, 32, 1)
    assert cfg(pad_to=32).pad_to is None  # pads 32x32 by nothing: one run however spelled
    with pytest.raises(ValueError, match="30 is smaller than the 32x32 images"):
        cfg(pad_to=30)
    batches = write_cifar(tmp_path / "c")
    padded = data.load(cfg(tmp_path / "c", pad_to=36))
    assert padded.x_test.shape == (N_TEST, 36, 36, 3)
    np.testing.assert_array_equal(padded.x_test[:, 2:34, 2:34], as_nhwc(batches[5][0]))
    assert padded.x_test[:, :2].max() == 0 and padded.x_test[:, :, 34:].max() == 0
    resized = data.load(cfg(tmp_path / "c", resize_to=48)).x_test
    assert resized.shape == (N_TEST, 48, 48, 3)
    for c in range(3):  # each channel resized as a grey image alone would be
        alone = data.resize_bilinear(as_nhwc(batches[5][0])[..., c:c + 1], 48)
        np.testing.assert_array_equal(resized[..., c:c + 1], alone)


def test_grey_arrays_are_refused_for_cifar10_and_colour_for_mnist():
    grey = np.zeros((4, 32, 32), np.uint8)
    colour = np.zeros((4, 32, 32, 3), np.uint8)
    y = np.zeros(4, np.int64)
    data.check_arrays(colour, y, colour, y, "here", channels=3)
    with pytest.raises(DataError, match=r"not \(N, H, W, 3\)"):
        data.check_arrays(grey, y, grey, y, "here", channels=3)
    with pytest.raises(DataError, match=r"not \(N, H, W\)$"):
        data.check_arrays(colour, y, colour, y, "here")


def test_the_features_figure_shows_a_colour_input_in_colour_and_grey_in_grey():
    from bnexp.views import plots

    outputs = [("conv1", np.random.default_rng(0).normal(size=(28, 28, 6)))]
    colour = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    fig = plots.figure_features(colour, 3, outputs, 2, data.CLASS_NAMES["cifar10"])
    shown = fig.axes[0].images[0]
    assert shown.get_array().shape == (32, 32, 3)
    np.testing.assert_array_equal(np.asarray(shown.get_array()), colour)
    assert "class 3 (cat)" in fig.get_suptitle()
    for grey in (colour[..., :1], colour[..., 0]):
        shown = plots.figure_features(grey, 3, outputs, 2).axes[0].images[0]
        assert shown.get_array().shape == (32, 32) and shown.get_cmap().name == "gray"


# reference models in plain Keras layers: what `bnexp summary` must count
LENET_BN = [("conv", 6, 5), ("bn",), ("act",), ("avg",), ("conv", 16, 5), ("bn",), ("act",),
            ("avg",), ("flatten",), ("dense", 120, False), ("bn",), ("act",),
            ("dense", 84, False), ("bn",), ("act",), ("dense", 10, True)]
MLP_BN = [("flatten",), ("dense", 300, False), ("bn",), ("act",), ("dense", 100, False),
          ("bn",), ("act",), ("dense", 10, True)]
MLP_PLAIN = [("flatten",), ("dense", 64, True), ("act",), ("dense", 10, True)]


def keras_reference(layers, shape=(32, 32, 3)):
    from tensorflow import keras

    made = []
    for kind, *args in layers:
        made.append({"conv": lambda f, k: keras.layers.Conv2D(f, k, use_bias=False),
                     "bn": lambda: keras.layers.BatchNormalization(),
                     "act": lambda: keras.layers.Activation("sigmoid"),
                     "avg": lambda: keras.layers.AveragePooling2D(2),
                     "flatten": lambda: keras.layers.Flatten(),
                     "dense": lambda u, b: keras.layers.Dense(u, use_bias=b)}[kind](*args))
    return keras.Sequential([keras.Input(shape), *made])


@pytest.mark.tf
@pytest.mark.parametrize("model, reference, total", [
    ("{arch: lenet}", LENET_BN, 62_684),
    ("{arch: mlp}", MLP_BN, 954_210),
    ("{arch: mlp, hidden: [64], bn: {placement: none}}", MLP_PLAIN, 3072 * 64 + 64 + 650),
])
def test_summary_counts_keras_params_of_the_presets_on_colour_images(write_config, model,
                                                                     reference, total):
    from bnexp import config
    from bnexp.config import presets

    path = write_config(f"data: {{dataset: cifar10}}\nmodel: {model}\n")
    result = CliRunner().invoke(app, ["summary", str(path)])
    assert result.exit_code == 0, result.output
    expected = keras_reference(reference).count_params()
    assert expected == total
    assert f"Total params: {total:,}" in result.output
    (spec,) = config.load(path)
    assert presets.weight_count(spec.config) == total  # what validate checks, no TensorFlow


@pytest.mark.e2e
@pytest.mark.slow
def test_a_cifar10_lenet_trains_through_the_installed_script_and_draws_its_features(tmp_path):
    """`bnexp train --smoke` (one epoch, cut to three batches of 10) on the tiny batches
    through the installed script, the files a run writes, then `plot features` of the run
    with the colour image it took."""
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(folder)
    config = tmp_path / "c10.yaml"
    config.write_text(f"""
name: c10
data: {{dataset: cifar10, path: {folder}, batch_size: 10, validation_size: 20}}
model: {{arch: lenet, activation: relu}}
optimizer: {{learning_rate: 0.1}}
train: {{epochs: 4}}
""")
    out = run_bnexp("train", config, "--smoke", "--runs-dir", tmp_path / "runs", timeout=300)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert out.stdout.strip() == str(run)
    with open(run / "metrics.csv") as f:
        (row,) = list(csv.DictReader(f))  # one epoch
    assert np.isfinite(float(row["train_loss"])) and 0 <= float(row["test_acc"]) <= 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    png = tmp_path / "f.png"
    drawn = CliRunner().invoke(app, ["plot", "features", str(run), "--image", "3",
                                     "--out", str(png)])
    assert drawn.exit_code == 0 and drawn.output.strip() == str(png), drawn.output
    assert png.stat().st_size > 10_000
    from bnexp.analysis import features

    image, label, outputs = features.feature_maps(run, image=3)
    np.testing.assert_array_equal(image, as_nhwc(batches[5][0])[3])
    assert label == batches[5][1][3] and outputs[0][1].shape == (28, 28, 6)
