"""bnexp/tfquiet.py: modules hidden during TensorFlow's import; bnexp/xlacache.py: XLA's
persistent cache."""

import os
import re
import subprocess
import sys

import pytest

from bnexp import tfquiet, xlacache
from tests.helpers import run_bnexp


def test_a_hidden_module_fails_to_import_inside_the_block_and_imports_after_it():
    name = "bnexp_never_loaded_module_xyz"
    with tfquiet.hidden(name, "json"):
        with pytest.raises(ImportError):
            __import__(name)
        import json  # already loaded before the block: not hidden

        assert json.dumps(1) == "1"
    assert name not in sys.modules  # the block leaves no "not there" behind
    with pytest.raises(ModuleNotFoundError):  # a module that does not exist at all
        __import__(name)


def test_the_xla_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.setenv("BNEXP_XLA_CACHE", "off")
    assert xlacache.use_xla_cache() is None and "TF_XLA_FLAGS" not in os.environ
    monkeypatch.setenv("BNEXP_XLA_CACHE", str(tmp_path / "xla"))
    assert xlacache.use_xla_cache() == tmp_path / "xla" and (tmp_path / "xla").is_dir()
    flags = os.environ["TF_XLA_FLAGS"]
    assert flags == f"--tf_xla_persistent_cache_directory={tmp_path / 'xla'}"
    assert xlacache.use_xla_cache() is None  # a cache already named is left as it is
    monkeypatch.setenv("TF_XLA_FLAGS", "")
    monkeypatch.setenv("BNEXP_XLA_CACHE", str(tmp_path / "x a b"))  # cut at the space by TF
    assert xlacache.use_xla_cache() is None and os.environ["TF_XLA_FLAGS"] == ""
    monkeypatch.delenv("BNEXP_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    default = xlacache.xla_cache_dir()
    assert default.parent == tmp_path / "home" / "bnexp" / "xla"
    assert default.name.startswith("tf") and default.name == xlacache.xla_cache_dir().name
    for switch in ("on", "True", "1", "default", " yes "):  # a switch, not a folder named `on`
        monkeypatch.setenv("BNEXP_XLA_CACHE", switch)
        assert xlacache.xla_cache_dir() == default
    for switch in ("OFF", "false", "0", "no"):
        monkeypatch.setenv("BNEXP_XLA_CACHE", switch)
        assert xlacache.xla_cache_dir() is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BNEXP_XLA_CACHE", "cache/xla")  # relative: from here, made absolute
    assert xlacache.xla_cache_dir() == tmp_path / "cache" / "xla"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_xla_cache_of_no_users_home_is_one_line_before_anything_is_written(tmp_path, jobs):
    """BNEXP_XLA_CACHE=~nosuchuser/x was a RuntimeError traceback from TensorFlow's
    import, exit 1."""
    config = tmp_path / "c.yaml"
    config.write_text("name: c\ndata: {dataset: synthetic}\n")
    env = {"BNEXP_XLA_CACHE": "~nosuchuser_bnexp/x", "TF_XLA_FLAGS": ""}
    done = run_bnexp("train", config, config, "--smoke", "--runs-dir", tmp_path / "runs",
                     "--jobs", jobs, env=env)
    assert done.returncode == 2 and done.stderr == (
        "error: $BNEXP_XLA_CACHE: ~nosuchuser_bnexp/x: no such user's home folder\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_smoke_run_fills_the_xla_cache_and_keras_never_loaded_pandas(tmp_path):
    """A real run (MLP: XLA-compiled whole) writes its compiled steps into the cache, and
    a second run of the same model reads them back: the cache holds no new file."""
    cache = tmp_path / "xla"
    config = tmp_path / "c.yaml"
    config.write_text("name: c\nmodel: {arch: mlp, hidden: [16]}\ntrain: {epochs: 1}\n"
                      "data: {dataset: synthetic, batch_size: 50, validation_size: 100}\n")
    # not the suite's own cache; bnexp's own log level, not the suite's
    env = {"BNEXP_XLA_CACHE": str(cache), "TF_XLA_FLAGS": "", "TF_CPP_MIN_LOG_LEVEL": ""}
    first = run_bnexp("train", config, "--runs-dir", tmp_path / "runs", env=env)
    assert first.returncode == 0, first.stderr
    files = sorted(p.name for p in cache.iterdir())
    assert files and all(name.startswith("xla_compile_cache") for name in files)
    again = run_bnexp("train", config, "--runs-dir", tmp_path / "runs2", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in cache.iterdir()) == files
    # loading from the cache logs C++ errors that mean nothing: none reach the terminal
    lines = (again.stderr + again.stdout).splitlines()
    assert lines and not [ln for ln in lines if re.match(r"[EWIF]\d{4} ", ln)]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from bnexp.tfquiet import import_tensorflow; "
         "import_tensorflow(); print('pandas' in sys.modules, 'matplotlib' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["False", "False"]
