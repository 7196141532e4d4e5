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

from bnexp.config import Config, network
from bnexp.model.residual import RANDOM_LAYERS, Residual, call_layers

__all__ = ["RANDOM_LAYERS", "call_layers", "forward_except_conv", "segments", "xla_mode"]

# measured (benchmarks/throughput.py, docs/performance.md): resnet8-128 on a 2-core AMD
# EPYC, false 0.985x of except_conv's speed, true 0.04-0.05x (XLA's CPU convolutions)
XLA_BY_DEFAULT = {"mlp": True, "lenet": "except_conv", "resnet": "except_conv"}


def xla_mode(config: Config) -> bool | str:
    """train.jit_compile resolved: True, False or "except_conv". auto picks what was
    measured faster for the architecture, and never XLA for a mirrored run."""
    if config.train.strategy == "mirrored":
        return False
    if config.train.jit_compile == "auto":
        if config.model.arch == "layers":  # as measured for the presets: convolutions or not
            return "except_conv" if any(layer.type == "conv" for layer in
                                        network.leaves(config.model.layers)) else True
        return XLA_BY_DEFAULT[config.model.arch]
    return config.train.jit_compile


def segments(layers) -> list[list[keras.layers.Layer]]:
    """A list of layers (a model's) cut into runs: each convolution alone, each residual
    block alone, the layers between them together, in order."""
    layers = layers.layers if isinstance(layers, keras.Model) else layers
    runs: list[list[keras.layers.Layer]] = []
    for layer in layers:
        if isinstance(layer, keras.layers.Conv2D | Residual):
            runs.append([layer])
        elif runs and not isinstance(runs[-1][0], keras.layers.Conv2D | Residual):
            runs[-1].append(layer)
        else:
            runs.append([layer])
    return runs


def forward_except_conv(model: keras.Sequential):
    """A function (x, training, random) -> logits equal to call_layers(model.layers, ...),
    with each run of layers between convolutions one XLA cluster and the convolutions
    left out. A residual block's branch and shortcut are cut the same way; the sum and
    its activation stay outside XLA."""
    return _forward(model.layers)


def _forward(layers):
    pieces = [_piece(run) for run in segments(layers)]

    def forward(x, training, random=True):
        for piece in pieces:
            x = piece(x, training, random)
        return x

    return forward


def _piece(run: list[keras.layers.Layer]):
    if isinstance(run[0], Residual):
        block = run[0]
        branch, shortcut = _forward(block.branch), _forward(block.shortcut)
        return lambda x, training, random: block.combine(branch(x, training, random),
                                                         shortcut(x, training, random))

    def apply(x, training, random):
        return call_layers(run, x, training, random)

    if isinstance(run[0], keras.layers.Conv2D):
        return apply
    return tf.function(apply, jit_compile=True, autograph=False)
