"""A finished run's feature maps: the `bnexp plot features` command's numbers.

It rebuilds the run from its folder (config.yaml, the dataset, the model, the weights
of checkpoint.npz) and runs one test image through the layers before `flatten` in
inference mode. Needs TensorFlow; the figure is drawn by bnexp.views.plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorflow import keras

from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp.config import network
from bnexp.errors import BadInput
from bnexp.model.build import build, to_unit
from bnexp.runs import checkpoint


def layer_outputs(model: keras.Model, image: np.ndarray, upto: int) -> list[tuple[str, np.ndarray]]:
    """(layer name, output) of the model's first `upto` layers on one uint8 image, in
    inference mode: the feature maps of conv -> BN -> activation -> pool."""
    h = to_unit(image[None])
    outputs = []
    for layer in model.layers[:upto]:
        h = layer(h, training=False)
        outputs.append((layer.name, h.numpy()[0]))
    return outputs


def feature_maps(run_dir: Path, image: int = 0) -> tuple[np.ndarray, int, list]:
    """(test image, its label, [(layer, output)]) of a finished run's conv layers, from
    its config.yaml and checkpoint.npz: every layer before the first flatten or global
    average pooling, inference mode (a residual block's output is its sum's).
    The image is the uint8 pixels the model takes: (H, W) grey, (H, W, 3) colour (RGB).
    BadInput if the run has no checkpoint or no convolutions."""
    source = run_dir / "config.yaml"
    if not (run_dir / checkpoint.FILENAME).is_file() or not source.is_file():
        raise BadInput(f"{run_dir}: RUN_DIR: not a run folder with a checkpoint (config.yaml "
                       "and checkpoint.npz: the run must have finished an epoch)")
    (spec,) = config_mod.load(source)
    layers = config_mod.model_layers(spec.config.model)
    kinds = [layer.type for layer in layers]
    every = [layer.type for layer in network.leaves(layers)]
    stop = next((i for i, kind in enumerate(kinds) if kind in ("flatten", "global_avg_pool")),
                None)
    if "conv" not in every or stop is None:
        raise BadInput(f"{source}: model: feature maps need convolutions before a flatten "
                       "or global_avg_pool layer; this model has "
                       f"{', '.join(dict.fromkeys(every))}")
    splits = data_mod.load(spec.config.data, str(source))
    if not 0 <= image < len(splits.x_test):
        raise BadInput(f"--image {image}: the test set has {len(splits.x_test)} images")
    model = build(spec.config.model, splits.input_shape)
    checkpoint.load_weights(run_dir / checkpoint.FILENAME, model)
    upto = stop
    x = splits.x_test[image]
    picture = x[..., 0] if x.shape[-1] == 1 else x
    return picture, int(splits.y_test[image]), layer_outputs(model, x, upto)


def class_names(run_dir: Path) -> list[str] | None:
    """The class names of the run's dataset (Fashion-MNIST's, CIFAR-10's), or None (digits)."""
    (spec,) = config_mod.load(run_dir / "config.yaml")
    return data_mod.CLASS_NAMES[spec.config.data.dataset]
