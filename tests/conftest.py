"""Shared test set-up: no downloads, quiet TensorFlow, a fresh Keras session per test."""

import os
import sys
from pathlib import Path

import pytest

os.environ["BNEXP_NO_DOWNLOAD"] = "1"  # never download during tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    if "keras" in sys.modules:  # only tests that imported TensorFlow need this
        sys.modules["keras"].backend.clear_session()


@pytest.fixture
def write_config(tmp_path):
    """write_config(text, name="c.yaml") -> path of a YAML file in a temp folder."""

    def write(text: str, name: str = "c.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
