"""Residual blocks in Keras, the scalar layers of SkipInit and Fixup, and walking a model
whose layers may hold other layers.

A `Residual` is one layer of the Sequential model holding its branch and shortcut
layers; `call_layers` runs a list in order (a block's inner lists too), `leaves` lists
every layer that computes something, and `walk` runs data through the model layer by
layer calling `before(layer, x)` ahead of each leaf: what precise BN, drift,
activation percentiles and feature maps need to reach inside blocks. The trap: a
block's inner layers are not in `model.layers`; walk `leaves(model.layers)`.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras

from bnexp.model.noise import Noise

RANDOM_LAYERS = (keras.layers.Dropout, keras.layers.GaussianNoise, Noise)


def call_layers(layers, x, training: bool, random: bool = True):
    """x through `layers` in turn, each in training mode or not; random=False keeps the
    dropout and noise layers in inference mode even in training mode (the normalizations
    alone on batch statistics: the batch-statistics evaluation)."""
    for layer in layers:
        if isinstance(layer, Residual):
            x = layer(x, training=training, random=random)
            continue
        on = training and (random or not isinstance(layer, RANDOM_LAYERS))
        x = layer(x, training=on)
    return x


class Residual(keras.layers.Layer):
    """activation(shortcut(x) + branch(x)): `branch` and `shortcut` are lists of layers
    ([] shortcut: the identity). A SkipInit scalar is the branch's last layer."""

    def __init__(self, branch: list, shortcut: list, activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.branch = list(branch)
        self.shortcut = list(shortcut)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layers in (self.branch, self.shortcut):
            inner = shape
            for layer in layers:
                layer.build(inner)
                inner = tuple(layer.compute_output_shape(inner))
        self.built = True

    def call(self, x, training=None, random=True):
        return self.combine(call_layers(self.branch, x, training, random),
                            call_layers(self.shortcut, x, training, random))

    def combine(self, branch, shortcut):
        return self.activation(branch + shortcut)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.branch:
            shape = tuple(layer.compute_output_shape(shape))
        return shape


class ScalarBias(keras.layers.Layer):
    """x + b, one trainable scalar b starting at 0 (Fixup)."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")

    def call(self, x):
        return x + tf.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


class ScalarScale(keras.layers.Layer):
    """x * a, one trainable scalar a starting at `init` (Fixup's multiplier, SkipInit)."""

    def __init__(self, init: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = float(init)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), name="scale",
                                     initializer=keras.initializers.Constant(self.init))

    def call(self, x):
        return x * tf.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


class ChannelPad(keras.layers.Layer):
    """He et al.'s option A shortcut: x[:, ::stride, ::stride] with `extra` zero channels
    after its own (on vectors: `extra` zero features)."""

    def __init__(self, stride: int = 1, extra: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.extra = int(stride), int(extra)

    def call(self, x):
        if len(x.shape) == 4 and self.stride > 1:
            x = x[:, ::self.stride, ::self.stride, :]
        pads = [[0, 0]] * (len(x.shape) - 1) + [[0, self.extra]]
        return tf.pad(x, pads) if self.extra else x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if len(shape) == 4:
            shape[1:3] = [None if d is None else -(-d // self.stride) for d in shape[1:3]]
        shape[-1] += self.extra
        return tuple(shape)


def leaves(layers) -> list:
    """Every layer that computes something, in order: a block's branch, then its shortcut."""
    out = []
    for layer in layers:
        out += leaves([*layer.branch, *layer.shortcut]) if isinstance(layer, Residual) \
            else [layer]
    return out


def weight_names(model) -> list[str]:
    """`layer/weight` for each of model.weights, in that order, the layer named as
    `bnexp summary` names it (a residual block's inner layers by their own names). A
    weight no leaf owns keeps its Keras path; a repeated name gets `_2`, `_3`, ... ."""
    owned = {id(w): f"{layer.name}/{w.name}" for layer in leaves(model.layers)
             for w in layer.weights}
    names, seen = [], {}
    for w in model.weights:
        name = owned.get(id(w)) or getattr(w, "path", None) or w.name
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def all_layers(layers) -> list:
    """Every layer, residual blocks and their inner layers alike (to find one by name)."""
    out = []
    for layer in layers:
        out.append(layer)
        if isinstance(layer, Residual):
            out += all_layers([*layer.branch, *layer.shortcut])
    return out


def walk(layers, x, before=None, after=None):
    """x through `layers` in inference mode, one leaf at a time, calling before(layer, x)
    ahead of each leaf and after(layer, y) with its output (a block: its branch, then its
    shortcut, then the sum); returns the output."""
    for layer in layers:
        if isinstance(layer, Residual):
            y = layer.combine(walk(layer.branch, x, before, after),
                              walk(layer.shortcut, x, before, after))
        else:
            if before is not None:
                before(layer, x)
            y = layer(x, training=False)
        if after is not None:
            after(layer, y)
        x = y
    return x
