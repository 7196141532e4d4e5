"""Batch normalization from scratch: a NumPy reference and a Keras layer.

Training mode normalizes with the batch's own moments, computed over every axis
but the last (per feature for (N, D) inputs, per channel for (N, H, W, C)), and
moves the running statistics toward them:

    moving = momentum * moving + (1 - momentum) * batch

Inference mode normalizes with the running statistics and changes nothing.
Both use the biased batch variance, as Keras does (Ioffe & Szegedy use the
unbiased m/(m-1) one for inference; with batches of 32+ the difference is small).

The traps this layer avoids, each a classic broken notebook: updating the
running statistics in inference mode, or never updating them (inference then
normalizes with mean 0 / variance 1 and accuracy sits near chance); and
normalizing with batch statistics at inference, which makes a prediction
depend on the rest of its batch.
"""

from __future__ import annotations

import numpy as np
from tensorflow import keras
from tensorflow.keras import ops


def batch_norm_numpy(x, gamma, beta, moving_mean, moving_var, *, momentum, epsilon, training):
    """(y, new_moving_mean, new_moving_var) for a NumPy batch; the reference the tests use."""
    if training:
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    else:
        mean, var = moving_mean, moving_var
    y = gamma * (x - mean) / np.sqrt(var + epsilon) + beta
    return y, moving_mean, moving_var


@keras.utils.register_keras_serializable(package="bnexp")
class BatchNorm(keras.layers.Layer):
    """bnexp's own batch normalization over the last axis, with Keras' weights and semantics.

    Weights: gamma, beta (trainable, when scale / center), moving_mean, moving_variance
    (non-trainable): the same four, with the same counts, as keras.layers.BatchNormalization.
    Like Keras, a layer with trainable=False always runs in inference mode.
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma") if (
            self.scale
        ) else None
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta") if (
            self.center
        ) else None
        self.moving_mean = self.add_weight(
            shape=shape, initializer="zeros", name="moving_mean", trainable=False
        )
        self.moving_variance = self.add_weight(
            shape=shape, initializer="ones", name="moving_variance", trainable=False
        )

    def call(self, inputs, training=None):
        if training and self.trainable:
            axes = list(range(len(inputs.shape) - 1))
            mean = ops.mean(inputs, axis=axes)
            variance = ops.mean(ops.square(inputs - mean), axis=axes)  # biased, as Keras
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = (inputs - mean) / ops.sqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * self.gamma
        if self.beta is not None:
            outputs = outputs + self.beta
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
