"""The Python API (bnexp.train / load_runs / compare / doctor / plot_*) and the example
notebook run top to bottom by a real Jupyter kernel."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import bnexp
from bnexp.cli import app
from tests.helpers import SYNTHETIC, fake_run, needs_fashion, synthetic_config

ROOT = Path(__file__).resolve().parents[1]


def test_import_bnexp_is_light_and_lists_the_api():
    """`import bnexp` loads neither pandas nor TensorFlow; the API arrives on first use."""
    code = ("import sys, bnexp; assert 'pandas' not in sys.modules; "
            "assert 'tensorflow' not in sys.modules; bnexp.compare; "
            "assert 'pandas' in sys.modules and 'tensorflow' not in sys.modules; "
            "print(sorted(bnexp.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    for name in ("train", "load_runs", "compare", "doctor", "plot_curves", "BadInput"):
        assert f"'{name}'" in out
    with pytest.raises(AttributeError):
        bnexp.no_such_thing  # noqa: B018


@pytest.mark.slow  # trains four runs
def test_train_from_a_dict_matches_the_cli_and_skips_what_is_finished(tmp_path, write_config):
    """A dict config trains the same runs as its YAML file through the CLI: same folders,
    same numbers; calling train again skips them."""
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    text = SYNTHETIC + "sweep: {seeds: [0, 1]}\n"
    result = CliRunner().invoke(app, ["train", str(write_config(text)), "--runs-dir",
                                      str(cli_dir), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    raw = yaml.safe_load(text)
    runs = bnexp.train(raw, runs_dir=api_dir)
    assert [r.status for r in runs] == ["completed"] * len(runs)
    cli_runs = sorted(p for p in cli_dir.iterdir() if p.is_dir())
    assert len(runs) == len(cli_runs) == 2
    for run, cli_run in zip(sorted(runs, key=lambda r: r.folder.name), cli_runs, strict=True):
        assert run.folder.parent == api_dir
        cli_summary = json.loads((cli_run / "summary.json").read_text())
        assert run.summary["config_hash"] == cli_summary["config_hash"]
        assert run.final["test_acc"] == pytest.approx(cli_summary["final"]["test_acc"])
        assert list(run.metrics["epoch"]) == list(range(1, len(run.metrics) + 1))
    again = bnexp.train(raw, runs_dir=api_dir)
    assert [r.folder for r in again] == [r.folder for r in runs]
    assert len([p for p in api_dir.iterdir() if p.is_dir()]) == len(runs)


@pytest.mark.slow  # trains two runs
def test_train_a_file_with_overrides_and_smoke_and_a_config_object(tmp_path, write_config):
    path = write_config(SYNTHETIC + "sweep: {seeds: [0, 1, 2]}\n")
    runs = bnexp.train(path, set=["optimizer.learning_rate=0.05"], runs_dir=tmp_path / "r",
                       smoke=True, name="quick")
    assert len(runs) == 1 and runs[0].folder.name.startswith("quick")  # smoke: first seed
    assert runs[0].config["optimizer"]["learning_rate"] == 0.05
    assert runs[0].status == "completed" and len(runs[0].metrics) == 1
    (run,) = bnexp.train(synthetic_config(train={"epochs": 1}), runs_dir=tmp_path / "c")
    assert run.status == "completed" and run.folder.name.startswith("t_")


@pytest.mark.parametrize("config, fragment", [
    ({"data": {"batch_size": -1}}, "config (dict): data.batch_size"),
    ({"modle": {}}, "config (dict): modle"),
    (3, "config: expected a path, a dict or a Config"),
    ("no/such.yaml", "no/such.yaml"),
])
def test_bad_input_raises_the_cli_message_and_writes_nothing(tmp_path, config, fragment):
    with pytest.raises(bnexp.BadInput) as error:
        bnexp.train(config, runs_dir=tmp_path / "r")
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "r").exists()


def test_the_api_error_is_the_line_the_cli_prints(tmp_path, write_config):
    path = write_config("data: {batch_size: 0}\n")
    result = subprocess.run([sys.executable, "-m", "bnexp", "validate", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    with pytest.raises(bnexp.BadInput) as error:
        bnexp.train(path, runs_dir=tmp_path / "r")
    assert result.stderr.strip() == f"error: {error.value}"


def test_load_runs_compare_and_doctor_read_run_folders(tmp_path):
    for seed, placement, acc in ((0, "none", 0.70), (1, "none", 0.72), (0, "before", 0.80),
                                 (1, "before", 0.84)):
        fake_run(tmp_path, seed, [acc - 0.1, acc], model__bn__placement=placement)
    table = bnexp.load_runs(tmp_path)
    assert len(table) == 4 and {"status", "seed", "model.bn.placement",
                                "final_test_acc", "best_test_acc"} <= set(table.columns)
    with pytest.warns(UserWarning, match="fewer than 5 seeds"):  # as the CLI says on stderr
        result = bnexp.compare(tmp_path, baseline="model.bn.placement=none")
    cli = CliRunner().invoke(app, ["compare", str(tmp_path), "--baseline",
                                   "model.bn.placement=none", "--format", "json"])
    assert json.loads(cli.stdout) == json.loads(result.to_json(orient="records"))
    before = result.set_index("model.bn.placement").loc["before"]
    assert before["mean"] == pytest.approx(0.82) and before["delta"] == pytest.approx(0.11)
    per_run = bnexp.compare(tmp_path, per_run=True)
    assert len(per_run) == 4
    findings = bnexp.doctor(tmp_path)
    assert list(findings.columns) == ["run", "id", "severity", "evidence", "advice"]
    with pytest.raises(bnexp.BadInput, match="no such folder"):
        bnexp.compare(tmp_path / "missing")
    with pytest.raises(bnexp.BadInput, match="at"):
        bnexp.compare(tmp_path, at="middle")


def test_plot_functions_return_figures_of_the_runs(tmp_path):
    from matplotlib.figure import Figure

    for seed in (0, 1):
        fake_run(tmp_path, seed, [0.5, 0.7, 0.8])
    fig = bnexp.plot_curves(tmp_path)
    assert isinstance(fig, Figure)
    (ax,) = [ax for ax in fig.axes if ax.get_ylabel() == "test accuracy"]
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == pytest.approx([0.5, 0.7, 0.8])
    with pytest.raises(bnexp.BadInput, match="steps.csv"):
        bnexp.plot_steps(tmp_path)


def test_python_dash_m_bnexp_and_version():
    out = subprocess.run([sys.executable, "-m", "bnexp", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"bnexp {bnexp.__version__}"
    help_text = subprocess.run([sys.executable, "-m", "bnexp", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "Usage: bnexp" in help_text and "--install-completion" in help_text


def test_shell_completion_completes_commands():
    """Typer's completion protocol: what bash asks for `bnexp co<TAB>`."""
    env = {"_BNEXP_COMPLETE": "complete_bash", "COMP_WORDS": "bnexp co", "COMP_CWORD": "1",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "bnexp"], capture_output=True, text=True,
                         env=env)
    assert out.stdout.split() == ["compare"]


@pytest.mark.e2e
@needs_fashion
def test_the_quickstart_notebook_runs_top_to_bottom_in_a_jupyter_kernel(tmp_path):
    """examples/quickstart.ipynb in a real kernel (nbclient), in a copy of its own: six
    runs on Fashion-MNIST, the comparison table, two inline figures, doctor's findings."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    shutil.copy(ROOT / "examples" / "quickstart.ipynb", tmp_path)
    nb = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors

    def shown(cell) -> dict:
        return {k: v for o in cell.outputs for k, v in o.get("data", {}).items()}

    assert shown(code[0])["text/plain"] == repr(bnexp.__version__)
    assert shown(code[1])["text/plain"].count("'completed'") == 6
    assert "train_acc" in shown(code[2])["text/html"]
    table = shown(code[3])
    assert "text/html" in table and "model.bn.placement" in table["text/plain"]
    assert "none" in table["text/plain"] and "before" in table["text/plain"]
    assert "image/png" in shown(code[4]) and "image/png" in shown(code[5])
    assert "'error'" not in shown(code[7])["text/plain"]
    if debug := os.environ.get("BNEXP_KEEP_NOTEBOOK"):
        nbformat.write(nb, debug)
    assert len([p for p in (tmp_path / "quickstart_runs").iterdir() if p.is_dir()]) == 6


def test_gap_and_activation_figures_draw_the_runs_numbers(tmp_path):
    from tests.helpers import fake_run_rows

    rows = [{"train_loss": 1.0, "train_acc": 0.6, "test_acc": 0.5, "test_acc_batchstats": 0.7},
            {"train_loss": 0.8, "train_acc": 0.7, "test_acc": 0.6, "test_acc_batchstats": 0.8}]
    bands = [{"step": s, "layer": "dense1_sigmoid", "unit": "all", "p15": -1.0 - s,
              "p50": 0.0, "p85": 1.0 + s} for s in (0, 10)]
    fake_run_rows(tmp_path, rows, seed=0, activations=bands)
    gap = bnexp.plot_gap(tmp_path)
    (ax,) = gap.axes
    moving, batch = ax.get_lines()
    assert list(moving.get_ydata()) == pytest.approx([0.5, 0.6])
    assert list(batch.get_ydata()) == pytest.approx([0.7, 0.8])
    fig = bnexp.plot_activations(tmp_path, unit="all")
    (median,) = fig.axes[0].get_lines()
    assert list(median.get_xdata()) == [0, 10] and list(median.get_ydata()) == [0.0, 0.0]
    with pytest.raises(bnexp.BadInput, match="drift.csv"):
        bnexp.plot_drift(tmp_path)
