"""Group normalization from scratch (Wu & He 2018), which with one group is layer
normalization and with one channel per group instance normalization: a NumPy reference
and a Keras layer, equal to keras.layers.GroupNormalization.

Each example's channels are cut into `groups` groups of consecutive channels; each group
is normalized by its own mean and biased variance over its channels and every position
(H, W for an image), then scaled and shifted per channel:

    y = gamma_c * (x - mean_g) / sqrt(var_g + epsilon) + beta_c

Nothing depends on the rest of the batch and there are no moving statistics: training
and inference compute the same thing. The trap in "layer norm": Keras'
LayerNormalization normalizes the last axis only by default (per position of an
image); Wu & He's layer norm normalizes over C, H and W together, which is this layer
with groups=1.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import ops


def group_norm_numpy(x, gamma, beta, *, groups: int, epsilon: float):
    """y for a NumPy batch (channels last, any rank >= 2); the reference the tests use."""
    shape = x.shape
    grouped = x.reshape(shape[0], -1, groups, shape[-1] // groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    var = grouped.var(axis=(1, 3), keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + epsilon)).reshape(shape)
    return y * gamma + beta


@keras.utils.register_keras_serializable(package="bnexp")
class GroupNorm(keras.layers.Layer):
    """bnexp's own group normalization, with keras.layers.GroupNormalization's arguments
    and weights (gamma, beta: one per channel) on channels-last inputs. groups=-1: one
    channel per group (instance norm). Statistics in float32 whatever the compute dtype
    (bfloat16 sums lose digits); the output has the layer's compute dtype."""

    def __init__(self, groups=32, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        # None = the default (the config's null), not add_weight's glorot_uniform
        self.beta_initializer = keras.initializers.get(beta_initializer or "zeros")
        self.gamma_initializer = keras.initializers.get(gamma_initializer or "ones")
        self.gamma = self.beta = None

    def build(self, input_shape):
        channels = input_shape[-1]
        groups = channels if self.groups == -1 else self.groups
        if groups <= 0 or channels % groups:
            raise ValueError(f"groups {self.groups} does not divide the {channels} channels")
        self._groups = groups
        if self.scale:
            self.gamma = self.add_weight(shape=(channels,), name="gamma",
                                         initializer=self.gamma_initializer, autocast=False)
        if self.center:
            self.beta = self.add_weight(shape=(channels,), name="beta",
                                        initializer=self.beta_initializer, autocast=False)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        channels = x.shape[-1]
        batch = tf.shape(x)[0]
        grouped = tf.reshape(x, [batch, -1, self._groups, channels // self._groups])
        mean, variance = tf.nn.moments(grouped, axes=[1, 3], keepdims=True)
        normalized = (grouped - mean) * tf.math.rsqrt(variance + self.epsilon)
        outputs = tf.reshape(normalized, tf.shape(x))
        if self.gamma is not None:
            outputs = outputs * ops.cast(self.gamma, outputs.dtype)
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        serialize = keras.initializers.serialize
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": serialize(self.beta_initializer),
                "gamma_initializer": serialize(self.gamma_initializer)}
