"""The IDX / npz loaders, the search order, splits, limits and padding, and bad files."""


import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnexp import data
from bnexp.config import DataConfig
from bnexp.errors import DataError
from tests.helpers import FASHION_DIR, needs_fashion, tiny_mnist, write_idx_folder


def cfg(**kw):
    base = dict(dataset="mnist", batch_size=4, validation_size=10)
    return DataConfig(**{**base, **kw})


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_files_in_data_path(tmp_path, gz):
    arrays = tiny_mnist()
    write_idx_folder(tmp_path / "m", arrays, gz=gz)
    s = data.load(cfg(path=str(tmp_path / "m")))
    assert s.x_train.shape == (30, 28, 28, 1) and s.x_val.shape == (10, 28, 28, 1)
    assert s.x_train.dtype == np.uint8 and s.y_train.dtype == np.int32
    np.testing.assert_array_equal(s.x_val[..., 0], arrays[0][:10])
    from bnexp.model.build import to_unit  # what the models take (imports TensorFlow)

    np.testing.assert_allclose(to_unit(s.x_val).numpy()[..., 0], arrays[0][:10] / 255.0,
                               rtol=1e-6)
    np.testing.assert_array_equal(s.y_train, arrays[1][10:])
    np.testing.assert_array_equal(s.y_test, arrays[3])
    unit = to_unit(s.x_train).numpy()
    assert unit.dtype == np.float32 and unit.min() >= 0.0 and unit.max() <= 1.0


def test_mnist_from_keras_npz_cache(tmp_path, monkeypatch):
    x, y, xt, yt = tiny_mnist()
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x.astype(np.uint8), y_train=y,
             x_test=xt.astype(np.uint8), y_test=yt)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("BNEXP_DATA_DIR", raising=False)
    s = data.load(cfg())
    assert s.source == str(tmp_path / "datasets")
    np.testing.assert_array_equal(s.y_test, yt)


def test_search_order_prefers_bnexp_data_dir_over_keras_cache(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "env" / "mnist", tiny_mnist(seed=1))
    write_idx_folder(tmp_path / "keras" / "datasets" / "mnist", tiny_mnist(seed=2))
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert data.load(cfg()).source == str(tmp_path / "env" / "mnist")
    monkeypatch.delenv("BNEXP_DATA_DIR")
    assert data.load(cfg()).source == str(tmp_path / "keras" / "datasets" / "mnist")


def test_missing_data_says_where_it_looked_and_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DataError) as info:
        data.load(cfg(), source="exp.yaml")
    message = str(info.value)
    assert message.startswith("exp.yaml: data.dataset: no mnist files found")
    assert str(tmp_path / "nothing" / "mnist") in message and "/usr/share/datasets" in message
    with pytest.raises(DataError, match="data.path.*apt-get install dataset-fashion-mnist"):
        data.load(cfg(dataset="fashion_mnist", path=str(tmp_path / "empty")))


def test_wrong_magic_truncated_and_incomplete_files_are_data_errors(tmp_path):
    arrays = tiny_mnist()
    write_idx_folder(tmp_path / "m", arrays, gz=False)
    images = tmp_path / "m" / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.load(cfg(path=str(tmp_path / "m")))
    images.write_bytes(b"\x00\x00\x08\x01" + good[4:])
    with pytest.raises(DataError, match="magic"):
        data.load(cfg(path=str(tmp_path / "m")))
    images.unlink()
    with pytest.raises(DataError, match="missing"):
        data.load(cfg(path=str(tmp_path / "m")))


def test_limit_test_limit_and_padding(tmp_path):
    write_idx_folder(tmp_path / "m", tiny_mnist())
    s = data.load(cfg(path=str(tmp_path / "m"), limit=8, test_limit=3, pad_to=32))
    assert s.x_train.shape == (8, 32, 32, 1) and s.x_test.shape == (3, 32, 32, 1)
    assert np.all(s.x_train[:, :2] == 0) and np.all(s.x_train[:, :, -2:] == 0)


def test_batch_larger_than_training_set_and_no_training_examples(tmp_path):
    write_idx_folder(tmp_path / "m", tiny_mnist())
    with pytest.raises(DataError, match="data.batch_size: 64 is larger than the 30"):
        data.load(cfg(path=str(tmp_path / "m"), batch_size=64))
    with pytest.raises(DataError, match="data.validation_size"):
        data.load(cfg(path=str(tmp_path / "m"), validation_size=40))


def test_synthetic_is_deterministic_and_learnable_shape():
    a, b = data.load(DataConfig(dataset="synthetic", validation_size=0)), data.load(
        DataConfig(dataset="synthetic", validation_size=0))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.input_shape == (28, 28, 1) and set(np.unique(a.y_train)) == set(range(10))


@needs_fashion
def test_real_fashion_mnist_from_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("BNEXP_DATA_DIR", raising=False)
    s = data.load(DataConfig(limit=1000, test_limit=500))
    assert s.source == str(FASHION_DIR)
    assert s.x_train.shape == (1000, 28, 28, 1) and len(s.x_val) == 5000 and len(s.x_test) == 500
    assert set(np.unique(s.y_val)) == set(range(10))


def test_an_idx_header_whose_sizes_multiply_past_2_to_the_64_is_refused(tmp_path):
    """4 dimensions of 65,536 multiply to 2**64, which np.prod wraps round to 0: with no
    data at all, the sizes would "match" and reshape would raise a traceback."""
    file = tmp_path / "train-images-idx3-ubyte"
    file.write_bytes(b"\x00\x00\x08\x04" + (65536).to_bytes(4, "big") * 4)
    with pytest.raises(DataError, match=r"0 bytes of data for shape \(65536, 65536, 65536, "
                                        r"65536\)$"):
        data.read_idx(file, 0x0804)


@settings(max_examples=300, deadline=None)
@given(ndim=st.integers(0, 255), dims=st.lists(st.integers(0, 2**32 - 1), max_size=6),
       body=st.binary(max_size=64), gz=st.booleans())
def test_any_idx_header_reads_whole_or_is_one_line_of_bad_data(ndim, dims, body, gz):
    raw = b"\x00\x00\x08" + bytes([ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + body
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / ("images.gz" if gz else "images")
        file.write_bytes(gzip.compress(raw) if gz else raw)
        try:
            array = data.read_idx(file, 0x0800 + ndim)
        except DataError as e:
            assert str(e).startswith(f"{file}: ") and "\n" not in str(e)
            return
    assert array.dtype == np.uint8 and array.ndim == ndim


BAD_PLACES = {"no such user": "~bnexp-no-such-user/data",
              "a name over 255 bytes": "/tmp/" + "a" * 256,
              "a path over 4096 bytes": "/tmp/" + "/".join(["b" * 200] * 21)}


@pytest.mark.parametrize("where", ["data.path", "$BNEXP_DATA_DIR", "$KERAS_HOME"])
@pytest.mark.parametrize("bad", BAD_PLACES)
def test_a_data_folder_that_cannot_be_one_is_a_data_error_naming_its_source(
        monkeypatch, where, bad):
    """~user of no user raised RuntimeError from expanduser, and a name too long raised
    OSError from is_file, which the CLI showed as "cannot write": a read, and the
    variable unnamed. Now one DataError naming the key or variable."""
    monkeypatch.delenv("BNEXP_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    value = BAD_PLACES[bad]
    if where.startswith("$"):
        monkeypatch.setenv(where[1:], value)
    elif bad != "no such user":  # the config refuses it first (validate catches it too)
        with pytest.raises(ValueError, match="too long for a path"):
            DataConfig(dataset="mnist", path=value)
        return
    cfg = DataConfig(dataset="mnist", path=value if where == "data.path" else None)
    with pytest.raises(DataError, match=rf"^\{where}: " if where[0] == "$" else f"^{where}: "):
        data.candidate_folders(cfg)
