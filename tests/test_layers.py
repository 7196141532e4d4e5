"""Models as layer lists: the presets as lists, shapes checked without TensorFlow, the
notebooks' parameter counts, loss warnings, data options, batch-stats evaluation by default."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bnexp import config, data
from bnexp.cli import app
from bnexp.config import advice
from tests.helpers import SYNTHETIC

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "configs" / "notebooks"


def notebook(stem: str) -> config.Config:
    """The notebook config named stem (or stem.yaml), else the one file starting with it."""
    stem = stem.removesuffix(".yaml")
    exact = NOTEBOOKS / f"{stem}.yaml"
    (path,) = [exact] if exact.exists() else NOTEBOOKS.glob(f"{stem}*.yaml")
    return config.load(path)[0].config


def build(cfg: config.Config):
    from bnexp.model.build import build as build_model

    return build_model(cfg.model, config.input_shape(cfg.data))


def per_layer_params(model) -> list[int]:
    return [int(sum(np.prod(w.shape) for w in layer.weights)) for layer in model.layers]


def test_the_lenet_preset_is_the_same_model_as_its_written_list():
    """A preset expands to a layer list; writing that list out builds the same model, the
    same weights from the same seed."""
    from tensorflow import keras

    preset = config.validate({"model": {"bn": {"input": True}}}, "t")
    written = [layer.model_dump(exclude_none=True) for layer in
               config.model_layers(preset.model)]
    listed = config.validate({"model": {"arch": "layers", "layers": written,
                                        "bn": preset.model.bn.model_dump()}}, "t")
    models = []
    for cfg in (preset, listed):
        keras.utils.set_random_seed(1)
        models.append(build(cfg))
    assert [layer.name for layer in models[0].layers] == [layer.name for layer in
                                                          models[1].layers]
    for a, b in zip(models[0].weights, models[1].weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("stem, counts", [
    # notebook 000's summary: conv 60, BN 24, pool, ReLU, conv 880, BN 64
    ("000_lenet_bn_conv_mnist", [60, 24, 0, 0, 880, 64]),
    # notebook 002's model_after.summary(): BN 3,136, dense 235,500, BN 1,200, dense 30,100, BN 400
    ("002_geron_bn_after", [0, 3136, 235500, 1200, 30100, 400, 1010]),
])
def test_notebook_models_have_the_parameters_the_notebooks_print(stem, counts):
    model = build(notebook(stem))
    assert per_layer_params(model)[: len(counts)] == counts


def test_notebook_totals():
    """002: 271,346 = 268,978 trainable + 2,368 (Geron); 003: 44,878 trainable counted by
    hand in the notebook, plus 452 moving statistics; 004's LeNet variant: 1250 features."""
    from bnexp.model.build import param_counts

    assert param_counts(build(notebook("002_geron_bn_after"))) == {
        "trainable": 268978, "non_trainable": 2368}
    assert param_counts(build(notebook("003_d2l_lenet_rmsprop.yaml"))) == {
        "trainable": 44878, "non_trainable": 452}
    model = build(notebook("004_mxnet_lenet_broken"))
    assert [layer.name for layer in model.layers if layer.name == "flatten1"]
    assert model.get_layer("flatten1").output.shape[-1] == 1250


def test_every_notebook_config_validates_without_tensorflow():
    probe = f"""
import sys
from pathlib import Path
from bnexp import config
for path in sorted(Path({str(NOTEBOOKS)!r}).glob("*.yaml")):
    config.load(path)
print("heavy:", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    assert len(list(NOTEBOOKS.glob("00[0-4]_*.yaml"))) >= 10


@pytest.mark.parametrize("layers, needle", [
    ([{"type": "conv", "filters": 4, "kernel_size": 30}, {"type": "flatten"},
      {"type": "dense", "units": 10}], "model.layers[0] (conv)"),
    ([{"type": "flatten"}, {"type": "max_pool"}, {"type": "dense", "units": 10}],
     "model.layers[1] (max_pool): needs an image"),
    ([{"type": "flatten"}, {"type": "dense", "units": 7}], "must end in 10 outputs"),
    ([{"type": "flatten"}, {"type": "dense", "units": 10, "name": "x"},
      {"type": "dense", "units": 10, "name": "x"}], "two layers are named 'x'"),
    ([{"type": "conv", "filters": 4}], "kernel_size"),
    ([{"type": "flatten"}, {"type": "dense", "units": 10,
                             "kernel_initializer": {"name": "he_normal", "stddev": 1.0}}],
     "he_normal takes no stddev"),
])
def test_a_layer_list_that_cannot_be_built_is_exit_2_naming_the_layer(write_config, layers,
                                                                      needle):
    path = write_config(json.dumps({"model": {"arch": "layers", "layers": layers}}))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert needle in result.output and str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_loss_and_output_mismatches_are_warned_about():
    assert "no softmax" in advice.notes_for(notebook("000_lenet_bn_conv_mnist.yaml"))[0]
    assert "sigmoid output" in advice.notes_for(notebook("001_d2l_tf2_lenet_224.yaml"))[0]
    assert "no softmax" in advice.notes_for(notebook("002_geron_bn_before.yaml"))[0]
    assert advice.notes_for(notebook("002_geron_bn_after")) == []
    for stem in ("000_lenet_bn_conv_mnist_fixed", "001_d2l_tf2_lenet_224_fixed",
                 "002_geron_bn_before_fixed", "003_d2l_lenet_rmsprop_fixed",
                 "004_mxnet_lenet_fixed"):
        assert advice.notes_for(notebook(stem)) == [], stem
    (fault,) = advice.notes_for(notebook("004_mxnet_lenet_broken"))
    assert fault.startswith("bn1, bn2: fault mxnet_moving_average")
    softmax_on_logits = config.validate({"model": {"arch": "layers", "layers": [
        {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}}, "t")
    assert "applies softmax once more" in advice.notes_for(softmax_on_logits)[0]


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_run_records_its_warnings_and_the_batch_stats_gap_by_default(write_config,
                                                                       tmp_path):
    """A BN model evaluates with batch statistics unless told not to (metrics.csv's
    test_acc_batchstats, summary.json's bn_gap); the loss warning is a note in train.log
    and summary.json. Without BN there is nothing to compare."""
    text = SYNTHETIC.replace("epochs: 2", "epochs: 1") + "  from_logits: false\n"
    for placement, batch_stats in (("before", True), ("none", False)):
        runs_dir = tmp_path / placement
        result = CliRunner().invoke(app, [
            "train", str(write_config(text)), "--runs-dir", str(runs_dir), "--set",
            f"model.bn.placement={placement}", "--set", "model.arch=mlp",
            "--set", "train.jit_compile=false"])  # XLA: not the point
        assert result.exit_code == 0, result.output
        (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
        summary = json.loads((run / "summary.json").read_text())
        lines = (run / "metrics.csv").read_text().splitlines()
        row = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
        assert (row["test_acc_batchstats"] != "") == batch_stats
        assert (summary.get("bn_gap") is not None) == batch_stats
        assert "no softmax" in summary["notes"][0]
        assert "no softmax" in (run / "train.log").read_text()


def test_validation_from_the_end_and_resize_and_shuffle_buffer():
    from tests.helpers import tiny_mnist

    x_train, y_train, x_test, y_test = tiny_mnist(n_train=40, n_test=10)
    start = data.split(x_train, y_train, x_test, y_test,
                       config.DataConfig(dataset="mnist", batch_size=4, validation_size=8))
    end = data.split(x_train, y_train, x_test, y_test,
                     config.DataConfig(dataset="mnist", batch_size=4, validation_size=8,
                                       validation_from="end"))
    np.testing.assert_array_equal(start.x_val[..., 0], x_train[:8])
    np.testing.assert_array_equal(end.x_val[..., 0], x_train[-8:])
    np.testing.assert_array_equal(end.x_train[..., 0], x_train[:-8])
    big = data.split(x_train, y_train, x_test, y_test,
                     config.DataConfig(dataset="mnist", batch_size=4, validation_size=8,
                                       resize_to=56))
    assert big.input_shape == (56, 56, 1) and big.x_test.dtype == np.uint8
    order = data.epoch_order(np.random.default_rng(0), 1000, 20)
    assert sorted(order) == list(range(1000))
    assert np.max(order - np.arange(1000)) < 200  # a 20-example buffer barely shuffles
    assert np.abs(data.epoch_order(np.random.default_rng(0), 1000, None)
                  - np.arange(1000)).max() > 900


def test_resize_equals_tensorflows_resize_with_pad():
    import tensorflow as tf

    x = np.random.default_rng(3).integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
    for size in (32, 224):
        reference = tf.image.resize_with_pad(tf.constant(x, tf.float32), size, size).numpy()
        ours = data.resize_bilinear(x, size).astype(np.float32)
        assert np.abs(ours - reference).max() <= 0.5 + 1e-3  # rounded to uint8


def test_summary_lists_a_bn_layers_variables_and_which_are_trainable():
    """Notebook 002 prints [(name, trainable)] of its first BN layer: gamma and beta
    trainable, the moving statistics not."""
    import re

    result = CliRunner().invoke(app, ["summary", str(NOTEBOOKS / "002_geron_bn_after.yaml"),
                                      "--weights"])
    assert result.exit_code == 0, result.output
    found = dict(re.findall(r"(bn1/\w+)\s*│\s*\(784,\)\s*│\s*(True|False)", result.output))
    assert found == {"bn1/gamma": "True", "bn1/beta": "True", "bn1/moving_mean": "False",
                     "bn1/moving_variance": "False"}


@pytest.mark.slow
@pytest.mark.deep_recursion
def test_the_documented_limit_of_1000_layers_builds_and_steps():
    """1,000 layers (998 activations, a flatten, a dense), the most validate lets
    through: the model builds and takes a training step (Keras' recursive graph walk
    raised RecursionError at Python's default limit), and the limit is back after."""
    import tensorflow as tf

    from bnexp.model.build import build as build_model

    limit = sys.getrecursionlimit()
    layers = [{"type": "activation", "activation": "relu"} for _ in range(998)]
    cfg = config.validate({"name": "deep", "data": {"dataset": "synthetic"},
                           "model": {"arch": "layers", "layers": [
                               *layers, {"type": "flatten"}, {"type": "dense", "units": 10}]}},
                          "t")
    model = build_model(cfg.model, (28, 28, 1))
    assert len(model.layers) == 1000 and sys.getrecursionlimit() == limit
    x = tf.random.uniform((4, 28, 28, 1))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x, training=True) ** 2)
    (grad, _) = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(grad.numpy()).all()
