"""train.jit_compile: which XLA mode a run gets, and XLA for everything but the
convolutions (its `except_conv` mode).

Measured on a 2-core CPU (benchmarks/throughput.py): XLA-compiling LeNet's whole step
makes it slower, because XLA's CPU convolutions are slower than TensorFlow's oneDNN
ones; not compiling it leaves BN as a dozen separate kernels (moments, normalize, and
twice as many in the gradient), each a pass over a (batch, 24, 24, 6) tensor, which
costs more than the convolutions themselves. The middle way: cut the Sequential
model at its convolutions and XLA-compile each run of layers between them
(BN -> activation -> pooling -> ... -> dense layers) as one cluster, forward and
backward; the convolutions stay on oneDNN. Same layers, same weights, same ops:
only how they are compiled changes (results within float noise: tests/test_xla.py).

The trap: the pieces must be created once per model and reused, or every call
retraces and recompiles them.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras

from bnexp.config import Config
from bnexp.model.noise import Noise

RANDOM_LAYERS = (keras.layers.Dropout, keras.layers.GaussianNoise, Noise)

XLA_BY_DEFAULT = {"mlp": True, "lenet": "except_conv"}  # measured: benchmarks/throughput.py


def xla_mode(config: Config) -> bool | str:
    """train.jit_compile resolved: True, False or "except_conv". auto picks what was
    measured faster for the architecture, and never XLA for a mirrored run."""
    if config.train.strategy == "mirrored":
        return False
    if config.train.jit_compile == "auto":
        if config.model.arch == "layers":  # as measured for the presets: convolutions or not
            return "except_conv" if any(layer.type == "conv" for layer in config.model.layers
                                        ) else True
        return XLA_BY_DEFAULT[config.model.arch]
    return config.train.jit_compile


def segments(model: keras.Sequential) -> list[list[keras.layers.Layer]]:
    """The model's layers cut into runs: each convolution alone, the layers between
    convolutions together, in order."""
    runs: list[list[keras.layers.Layer]] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            runs.append([layer])
        elif runs and not isinstance(runs[-1][0], keras.layers.Conv2D):
            runs[-1].append(layer)
        else:
            runs.append([layer])
    return runs


def call_layers(layers, x, training: bool, random: bool = True):
    """x through `layers` in turn, each in training mode or not; random=False keeps the
    dropout and noise layers in inference mode even in training mode (the normalizations
    alone on batch statistics: the batch-statistics evaluation)."""
    for layer in layers:
        on = training and (random or not isinstance(layer, RANDOM_LAYERS))
        x = layer(x, training=on)
    return x


def forward_except_conv(model: keras.Sequential):
    """A function (x, training, random) -> logits equal to call_layers(model.layers, ...),
    with each run of layers between convolutions one XLA cluster and the convolutions
    left out."""
    pieces = [_piece(run) for run in segments(model)]

    def forward(x, training, random=True):
        for piece in pieces:
            x = piece(x, training, random)
        return x

    return forward


def _piece(run: list[keras.layers.Layer]):
    def apply(x, training, random):
        return call_layers(run, x, training, random)

    if isinstance(run[0], keras.layers.Conv2D):
        return apply
    return tf.function(apply, jit_compile=True, autograph=False)
