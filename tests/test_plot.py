"""`bnexp plot`: the standard figures from real (synthetic-data) runs, feature maps, errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.analysis import compare, series
from bnexp.cli import app
from tests.helpers import drawn_picture

# trains conftest's 2 x 2 diagnosed study first, shared with test_documented_columns.py
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("diagnosed_study")]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(diagnosed_study):
    """The 2 x 2 sweep with every diagnostic on (tests must not change it: copy first)."""
    return diagnosed_study


def test_plot_draws_every_standard_figure_of_a_runs_folder(study, tmp_path):
    result = CliRunner().invoke(app, ["plot", "runs", str(study), "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    names = {"curves.png", "gap.png", "steps.png", "steps_by_group.csv", "activations.png",
             "drift.png"}
    assert {p.name for p in (tmp_path / "figs").iterdir()} == names
    shapes = {name: drawn_picture(tmp_path / "figs" / name).shape for name in names
              if name.endswith(".png")}
    # curves: three metric panels side by side (wide); drift: a row of two panels per
    # group, and only the BN group has drift rows
    assert shapes["curves.png"][1] > 2 * shapes["curves.png"][0]
    assert shapes["drift.png"][1] > shapes["drift.png"][0]


def test_plot_data_follows_the_csvs(study):
    found = compare.load(study)
    steps = series.step_curves(found, "test_acc")
    assert set(steps) == {"placement=before", "placement=none"}
    assert steps["placement=before"]["step"].tolist()[0] == 0
    assert (steps["placement=before"]["n_used"] == 2).all()
    layer, bands = series.activation_bands(found)
    assert layer == "dense2_sigmoid"
    assert set(bands) == {"placement=before", "placement=none"}
    drift = series.drift_curves(found)
    assert set(drift) == {"placement=before"}  # no BN, no drift rows


def test_plot_of_one_run_writes_into_its_folder(study, tmp_path):
    # a copy: the module's study stays as trained for the other tests, whatever the order
    original = sorted(p for p in study.iterdir() if p.is_dir())[0]
    run = Path(shutil.copytree(original, tmp_path / original.name))
    result = CliRunner().invoke(app, ["plot", "runs", str(run)])
    assert result.exit_code == 0, result.output
    drawn_picture(run / "curves.png")


def test_feature_maps_of_a_lenet_run(study, tmp_path):
    run = next(p for p in study.iterdir() if "before" in p.name)
    out = tmp_path / "f.png"
    result = CliRunner().invoke(app, ["plot", "features", str(run), "--out", str(out),
                                      "--image", "3", "--channels", "4"])
    assert result.exit_code == 0, result.output
    height, width, _ = drawn_picture(out).shape
    assert height > width  # a row per layer before flatten (conv, BN, sigmoid, pool, ...)


@pytest.mark.parametrize("args, needle", [
    (["plot", "runs", "nowhere"], "no such folder"),
    (["plot", "features", "nowhere"], "not a run folder"),
    (["plot", "a", "b"], "No such command"),
    (["plot", "runs", "a", "b"], "unexpected extra argument"),
])
def test_plot_bad_input_exits_2(args, needle):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and needle in result.output


def test_plot_loads_no_tensorflow(study, tmp_path):
    probe = f"""
import sys
from typer.testing import CliRunner
import bnexp.cli
r = CliRunner().invoke(bnexp.cli.app, ["plot", "runs", {str(study)!r}, "--out", {str(tmp_path)!r}])
assert r.exit_code == 0, r.output
print("heavy:", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout


def test_feature_maps_equal_the_convolution_of_the_checkpoint_weights(study):
    """conv1's map is the image convolved with the saved kernel; conv1_bn's is BN in
    inference mode with the saved moving statistics (NumPy)."""
    import numpy as np
    import tensorflow as tf

    from bnexp.analysis import features

    run = next(p for p in sorted(study.iterdir()) if "before" in p.name)
    image, label, outputs = features.feature_maps(run, image=5)
    names = [name for name, _ in outputs]
    assert names[:4] == ["conv1", "conv1_bn", "conv1_sigmoid", "pool1"]
    with np.load(run / "checkpoint.npz") as f:
        kernel, gamma, beta, mean, var = (f[f"model/{name}"] for name in (
            "conv1/kernel", "conv1_bn/gamma", "conv1_bn/beta", "conv1_bn/moving_mean",
            "conv1_bn/moving_variance"))
    x = image[None, :, :, None].astype(np.float32) / 255.0
    conv = tf.nn.conv2d(x, kernel, strides=1, padding="VALID").numpy()[0]
    np.testing.assert_allclose(outputs[0][1], conv, rtol=1e-5, atol=1e-5)
    bn = gamma * (conv - mean) / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(outputs[1][1], bn, rtol=1e-4, atol=1e-4)
    assert 0 <= label < 10 and outputs[3][1].shape == (12, 12, 6)
