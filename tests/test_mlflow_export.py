"""bnexp.mlflow_export: real runs exported into a SQLite MLflow store and read back with
MLflow's own readers; twice without duplicates; a resumed run sends only its new epochs;
a long param goes as an artifact; a missing mlflow and an unreachable server are one line.

Growth is real: a run stopped after its first of two epochs (as Ctrl-C stops it) is
exported, resumed in its own folder as `bnexp train --resume` resumes it, and exported
again. Every MLflow store and artifact lands under a temp folder (cwd moved there)."""

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bnexp
from bnexp import runs
from bnexp.errors import BadInput
from bnexp.mlflow_export import INSTALL, export, param_text

ROOT = Path(__file__).resolve().parents[1]
DATA = {"dataset": "synthetic", "batch_size": 100, "validation_size": 200, "limit": 200,
        "test_limit": 100}
STUDY = {"name": "study", "data": DATA, "model": {"arch": "mlp", "hidden": [16]},
         "train": {"epochs": 2, "jit_compile": False},
         "diagnostics": {"grad_norms": True, "weight_norms": True, "predictiveness": True},
         "sweep": {"seeds": [0, 1]}}
# a layer list whose value (6,000+ characters as load_runs writes it) is past MLflow's
# param limit, stopped after its first of two epochs
LAYERS = ([{"type": "flatten"}]
          + [{"type": "dense", "units": 8}, {"type": "bn"},
             {"type": "activation", "activation": "relu"}] * 10
          + [{"type": "dense", "units": 10}])
GROWING = {"name": "grow", "data": DATA, "model": {"arch": "layers", "layers": LAYERS},
           "train": {"epochs": 2, "jit_compile": False}}

@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Trained once: "study", a runs folder of two completed runs (seeds 0, 1, with the
    three probes: grad and weight norms, predictiveness); "stopped", a runs folder of one
    interrupted run."""
    top = tmp_path_factory.mktemp("mlflow_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(top)
        bnexp.train(STUDY, runs_dir=top / "study")
        _train_stopped(GROWING, top / "stopped")
    return {"study": top / "study", "stopped": top / "stopped"}


def _train_stopped(raw: dict, runs_dir: Path) -> Path:
    """A real run stopped (as by Ctrl-C) after its first epoch; its folder."""
    from bnexp import config, data
    from bnexp.reporter import NullReporter
    from bnexp.training import lifecycle, stop

    file = runs_dir.parent / f"{raw['name']}.yaml"
    file.write_text(json.dumps(raw))  # JSON is YAML, and has no aliases
    (spec,) = config.load(file)

    class StopAfterFirst(NullReporter):
        def epoch_done(self, row):
            stop.request()

    runs_dir.mkdir()
    with stop.handling(), pytest.raises(KeyboardInterrupt):
        lifecycle.run_one(spec, data.load(spec.config.data), runs_dir, StopAfterFirst())
    (path,) = runs_dir.iterdir()
    assert runs.read_summary(path)["status"] == "interrupted"
    return path


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh SQLite store under tmp_path, MLflow's readers pointed at it; cwd there."""
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _search(experiment: str):
    import mlflow

    return mlflow.search_runs(experiment_names=[experiment])


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)


# ------------------------------------------------------------------ the study


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.xdist_group("mlflow_export")
def test_each_run_reads_back_as_load_runs_and_its_folder_say(folders, store):
    results = export(folders["study"], store)
    assert [r["action"] for r in results] == ["created", "created"]
    found = _search("study").set_index("tags.bnexp.run_id")
    table = bnexp.load_runs(folders["study"]).set_index("run_id")
    assert sorted(found.index) == sorted(table.index) and len(found) == 2
    client = _client(store)
    for run_id, row in table.iterrows():
        mine, folder = found.loc[run_id], Path(row["path"])
        summary = runs.read_summary(folder)
        config_keys = [k for k in table.columns if k.split(".")[0] in summary["config"]]
        assert {k: mine[f"params.{k}"] for k in config_keys} == {
            k: param_text(_plain(row[k])) for k in config_keys}
        assert mine["params.model.bn.placement"] == "before"
        assert (mine["tags.status"], mine["tags.seed"], mine["tags.config_hash"]) == (
            row["status"], str(row["seed"]), row["config_hash"])
        assert (mine["tags.bnexp_version"], mine["tags.git_commit"]) == (
            summary["versions"]["bnexp"], str(summary["git_commit"]))
        assert mine["status"] == "FINISHED"
        assert mine["start_time"].value // 10**6 == _ms(summary["started"])
        assert mine["end_time"].value // 10**6 == _ms(summary["ended"])
        _assert_metrics(client, mine["run_id"], folder)
        artifacts = {a.path for a in client.list_artifacts(mine["run_id"])}
        assert artifacts == {f.name for f in folder.iterdir() if f.is_file()}


def _plain(value):
    """A load_runs cell as the config value it shows (NumPy numbers as Python's)."""
    return value.item() if hasattr(value, "item") else value


def _assert_metrics(client, mlflow_run_id: str, folder: Path) -> None:
    """Every epoch of metrics.csv (blank cells aside) and every probe row, at its step."""
    rows = runs.read_metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2]
    for column in rows[0]:
        if column != "epoch":
            expected = [(r["epoch"], r[column]) for r in rows if not math.isnan(r[column])]
            assert _history(client, mlflow_run_id, column) == expected  # float64 both
    grads = runs.read_table(folder, "grad_norms.csv")
    assert not grads.empty
    for (layer, weight), part in grads.groupby(["layer", "weight"]):
        assert _history(client, mlflow_run_id, f"grad_norm/{layer}/{weight}") == list(
            zip(part["step"], part["grad_norm"], strict=True))
    probes = runs.read_table(folder, "predictiveness.csv")
    assert len(set(probes["scale"])) == 4
    for step, part in probes.groupby("step"):
        assert _history(client, mlflow_run_id, "predictiveness/loss") == [
            (step, part["loss"].iloc[0])]
        for scale, value in zip(part["scale"], part["smoothness"], strict=True):
            assert _history(client, mlflow_run_id, f"predictiveness/smoothness/scale_{scale:g}"
                            ) == [(step, value)]
    norms = runs.read_table(folder, "weight_norms.csv")
    assert sorted(set(norms["epoch"])) == [0, 1, 2]
    for (layer, weight), part in norms.groupby(["layer", "weight"]):
        assert _history(client, mlflow_run_id, f"weight_norm/{layer}/{weight}") == list(
            zip(part["epoch"], part["norm"], strict=True))


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.xdist_group("mlflow_export")
def test_exporting_again_adds_nothing_twice(folders, store):
    first = export(folders["study"], store, experiment="twice")
    again = export(folders["study"], store, experiment="twice")
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
    assert [r["mlflow_run_id"] for r in again] == [r["mlflow_run_id"] for r in first]
    # past the fingerprint shortcut: the steps MLflow holds are not sent again either
    client = _client(store)
    for result in first:
        client.delete_tag(result["mlflow_run_id"], "bnexp.fingerprint")
    third = export(folders["study"], store, experiment="twice")
    assert [(r["action"], r["metric_steps"], r["params"]) for r in third] == [
        ("updated", 0, 0)] * 2
    assert len(_search("twice")) == 2
    for result in third:
        assert _history(client, result["mlflow_run_id"], "test_acc")[0][0] == 1
        assert [s for s, _ in _history(client, result["mlflow_run_id"], "test_acc")] == [1, 2]


# ------------------------------------------------------------------ the stopped run


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.xdist_group("mlflow_export")
def test_a_resumed_run_sends_only_its_new_epochs(folders, store, tmp_path):
    from bnexp.reporter import NullReporter
    from bnexp.training import lifecycle

    runs_dir = tmp_path / "grow"
    (stopped,) = folders["stopped"].iterdir()
    path = Path(shutil.copytree(stopped, runs_dir / stopped.name))  # resumed: a copy
    (before,) = export(runs_dir, store)
    mine = _search("grow").iloc[0]
    assert (mine["tags.status"], mine["status"]) == ("interrupted", "KILLED")
    client = _client(store)
    assert [s for s, _ in _history(client, before["mlflow_run_id"], "test_acc")] == [1]

    outcome = lifecycle.resume_run(path, None, NullReporter())  # `bnexp train --resume`
    assert outcome.status == "completed"
    (after,) = export(runs_dir, store)
    new_row = runs.read_metrics(path)[1]
    new_values = sum(not math.isnan(v) for k, v in new_row.items() if k != "epoch")
    assert (after["action"], after["metric_steps"], after["params"]) == (
        "updated", new_values, 0)
    assert after["mlflow_run_id"] == before["mlflow_run_id"]
    mine = _search("grow").iloc[0]
    assert (mine["tags.status"], mine["status"]) == ("completed", "FINISHED")
    assert mine["end_time"].value // 10**6 == _ms(runs.read_summary(path)["ended"])
    _, row = next(bnexp.load_runs(runs_dir).iterrows())
    for column, value in new_row.items():
        if column != "epoch" and not math.isnan(value):
            history = _history(client, after["mlflow_run_id"], column)
            assert [s for s, _ in history] == [1, 2] and history[-1] == (2, value)
    assert row["status"] == "completed"


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.xdist_group("mlflow_export")
def test_a_param_past_mlflows_limit_goes_as_an_artifact(folders, store):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    (result,) = export(folders["stopped"], store, experiment="long")
    mine = _search("long").iloc[0]
    layers = runs.read_summary(Path(result["folder"]))["config"]["model"]["layers"]
    assert len(param_text(layers)) > MAX_PARAM_VAL_LENGTH
    assert mine["params.model.layers"].startswith("artifact params/model.layers.json")
    assert mine["params.model.arch"] == "layers"
    local = _client(store).download_artifacts(result["mlflow_run_id"],
                                              "params/model.layers.json")
    assert json.loads(Path(local).read_text()) == layers


# ------------------------------------------------------------------ refusals


def test_without_mlflow_it_says_how_to_install_it_in_one_line(tmp_path):
    code = ("import sys; sys.modules['mlflow'] = None\n"
            "from pathlib import Path\n"
            "from bnexp.errors import BadInput\n"
            "from bnexp.mlflow_export import export\n"
            "try:\n"
            f"    export(Path({str(tmp_path)!r}))\n"
            "except BadInput as e:\n"
            "    print(e); sys.exit(2 + ('tensorflow' in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr  # 3: TensorFlow was imported
    assert result.stdout.strip().count("\n") == 0 and INSTALL in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_one_line_within_seconds(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ)
    t0 = time.monotonic()
    with pytest.raises(BadInput) as caught:
        export(tmp_path, "http://127.0.0.1:9")
    assert time.monotonic() - t0 < 15
    assert "\n" not in str(caught.value)
    assert "http://127.0.0.1:9" in str(caught.value) and "reach" in str(caught.value)
    assert dict(os.environ) == environment  # MLflow's retry settings were the call's only


def test_a_missing_runs_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such folder"):
        export(tmp_path / "absent")


def test_the_command_and_the_api_export_and_say_what_they_did(tmp_path):
    """`bnexp export mlflow` through the installed script: a line per run (created, then
    unchanged); bnexp.export_mlflow: a row per run; no TensorFlow in either."""
    from tests.helpers import fake_run

    for seed in (0, 1):
        fake_run(tmp_path / "runs", seed, [0.5, 0.6])
    exe = str(Path(sys.executable).with_name("bnexp"))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    result = subprocess.run([exe, "export", "mlflow", str(tmp_path / "runs"),
                             "--tracking-uri", uri], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("created: ") for line in lines)
    code = (f"import sys, bnexp; t = bnexp.export_mlflow({str(tmp_path / 'runs')!r}, "
            f"tracking_uri={uri!r}); assert list(t['action']) == ['unchanged'] * 2, t; "
            "assert 'tensorflow' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=120).returncode == 0
