"""Shared test set-up: no downloads, quiet TensorFlow, a fresh Keras session per test, no
environment variable of the developer's that changes results, and no test writing into
the checkout."""

import os
import sys
from pathlib import Path

import pytest

os.environ["BNEXP_NO_DOWNLOAD"] = "1"  # never download during tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as bnexp sets it: bnexp/tfquiet.py
# variables that change where data comes from or how a run is scheduled: a developer's
# own settings must not change what the tests see
for _name in ("BNEXP_DATA_DIR", "BNEXP_THREADS_PER_JOB", "KERAS_HOME"):
    os.environ.pop(_name, None)
# test modules import TensorFlow themselves: the XLA cache's flag must be set before
from bnexp.xlacache import use_xla_cache  # noqa: E402

use_xla_cache()

CHECKOUT = Path(__file__).resolve().parents[1]


def _checkout_entries() -> set[str]:
    """What a test could leave in the checkout: its top-level entries and runs/."""
    entries = set(os.listdir(CHECKOUT))
    if (CHECKOUT / "runs").is_dir():
        entries |= {f"runs/{name}" for name in os.listdir(CHECKOUT / "runs")}
    return entries


@pytest.fixture(autouse=True)
def _no_writes_into_the_checkout():
    """Fail a test that leaves a new file or folder in the checkout (e.g. a run in ./runs
    because an argument check broke). Caches that tools keep there are allowed."""
    before = _checkout_entries()
    yield
    new = {e for e in _checkout_entries() - before
           if not e.startswith((".pytest_cache", ".hypothesis", ".ruff_cache", "__pycache__"))}
    assert not new, f"the test wrote into the checkout: {sorted(new)}"


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """A fresh Keras session: what a test sees of layer names and seeds does not depend
    on the tests before it."""
    yield
    if "keras" in sys.modules:  # only tests that imported TensorFlow need this
        sys.modules["keras"].backend.clear_session(free_memory=False)


@pytest.fixture
def write_config(tmp_path):
    """write_config(text, name="c.yaml") -> path of a YAML file in a temp folder."""

    def write(text: str, name: str = "c.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def diagnosed_study(tmp_path_factory) -> Path:
    """The runs folder of a 2 x 2 synthetic sweep (BN before / none x seeds 0, 1) with
    every diagnostic that writes a file switched on, trained once per test process for
    the modules that read it (mark them xdist_group("diagnosed_study"): one process)."""
    from typer.testing import CliRunner

    from bnexp.cli import app
    from tests.helpers import DIAGNOSED

    folder = tmp_path_factory.mktemp("study")
    config = folder / "study.yaml"
    config.write_text(DIAGNOSED)
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(folder / "runs"),
                                      "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return folder / "runs"


def pytest_terminal_summary(terminalreporter, config):
    """The random order's seed, also under -q: rerun the same order with -p randomly
    --randomly-seed=N."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None:
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")


@pytest.fixture
def drawn(monkeypatch):
    """The figures a command draws, in the order it renders them (plots.render spied on;
    the files are written as ever)."""
    from bnexp.views import plots  # here: matplotlib only for the tests that draw

    figures = []
    real = plots.render

    def spy(fig, fmt="png", dpi=plots.DPI):
        figures.append(fig)
        return real(fig, fmt, dpi)

    monkeypatch.setattr(plots, "render", spy)
    return figures
