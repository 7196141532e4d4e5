"""Sweeps on a real local Ray instance: the run folders equal the local backend's."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from bnexp import config, runs, sweep
from bnexp.backends.ray import RayOptions
from bnexp.errors import BadInput
from tests.helpers import Quiet

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray at a time

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[dev]')")

SWEEP = {"name": "ray", "data": {"dataset": "synthetic", "batch_size": 50,
                                 "validation_size": 200},
         "train": {"epochs": 2, "deterministic": True},
         "sweep": {"grid": {"model.bn.placement": ["before", "after"]}, "seeds": [3]}}
RUNS = 2
TIMING = ["seconds", "samples_per_sec", "eval_seconds"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def by_hash(runs_dir):
    """config_hash -> run folder, for every run under runs_dir."""
    out = {}
    for summary in runs_dir.glob("*/summary.json"):
        out[json.loads(summary.read_text())["config_hash"]] = summary.parent
    return out


def assert_same_runs(a_dir, b_dir):
    a, b = by_hash(a_dir), by_hash(b_dir)
    assert set(a) == set(b) and len(a) == RUNS
    for key in a:
        assert (a[key] / "config.yaml").read_text() == (b[key] / "config.yaml").read_text()
        ma = pd.read_csv(a[key] / "metrics.csv").drop(columns=TIMING)
        mb = pd.read_csv(b[key] / "metrics.csv").drop(columns=TIMING)
        pd.testing.assert_frame_equal(ma, mb)
        with np.load(a[key] / "checkpoint.npz") as fa, np.load(b[key] / "checkpoint.npz") as fb:
            for name in fa.files:
                if name.startswith("model/"):
                    np.testing.assert_array_equal(fa[name], fb[name])
        sa, sb = runs.read_summary(a[key]), runs.read_summary(b[key])
        assert sa["status"] == sb["status"] == "completed"
        assert sa["final"]["test_acc"] == sb["final"]["test_acc"]


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The sweep trained locally once for both Ray tests: in 2 worker processes of one
    thread each, as the Ray tasks (cpus=1): oneDNN's results depend on the thread count
    even in deterministic mode."""
    folder = tmp_path_factory.mktemp("local")
    local = sweep.run_all(config.expand(SWEEP, "sweep.yaml"), folder, Quiet(), jobs=2)
    assert [o.status for o in local] == ["completed"] * RUNS
    return folder


@pytest.mark.parametrize("copy_back", [False, True])
def test_a_sweep_on_ray_equals_the_local_backend(local_ray, local_reference, tmp_path,
                                                  copy_back):
    specs = config.expand(SWEEP, "sweep.yaml")
    options = RayOptions(address=None, copy_back=copy_back, cpus=1)
    remote = sweep.run_all(specs, tmp_path / "ray", Quiet(), ray=options)
    assert [o.status for o in remote] == ["completed"] * RUNS
    assert {o.path.parent for o in remote} == {tmp_path / "ray"}
    assert_same_runs(local_reference, tmp_path / "ray")
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]
    # the skip rule of local sweeps holds: nothing runs twice
    again = sweep.run_all(specs, tmp_path / "ray", Quiet(), ray=options)
    assert all(o.skipped for o in again) and len(list((tmp_path / "ray").iterdir())) == RUNS


def test_without_ray_the_message_says_how_to_install(monkeypatch, tmp_path):
    from bnexp.backends import ray as ray_backend

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(BadInput, match=r"pip install 'bnexp\[ray\]'"):
        ray_backend.require_ray()
    specs = config.expand(SWEEP, "sweep.yaml")
    with pytest.raises(BadInput):
        sweep.run_all(specs, tmp_path / "r", Quiet(),
                      ray=RayOptions())
    assert not list((tmp_path / "r").glob("*/"))


def test_an_unreachable_address_is_bad_input_not_a_hang(tmp_path):
    from typer.testing import CliRunner

    from bnexp.cli import app

    config_file = tmp_path / "s.yaml"
    config_file.write_text(json.dumps(SWEEP))  # JSON is YAML
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config_file), "--backend", "ray", "--address",
                                 "127.0.0.1:1", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no Ray head answers" in result.output
    assert not (tmp_path / "r").exists()  # made only once every check has passed
    result = runner.invoke(app, ["train", str(config_file), "--copy-back"])
    assert result.exit_code == 2 and "need --backend ray" in result.output
