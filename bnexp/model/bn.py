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
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import ops


def batch_norm_numpy(x, gamma, beta, moving_mean, moving_var, *, momentum, epsilon, training,
                     virtual_batch_size=None):
    """(y, new_moving_mean, new_moving_var) for a NumPy batch; the reference the tests use.

    With virtual_batch_size v, training mode normalizes each run of v examples (the last
    may be shorter) by its own statistics, and the moving statistics move toward the
    mean over those ghost batches of their means and variances."""
    if not training:
        return gamma * (x - moving_mean) / np.sqrt(moving_var + epsilon) + beta, \
            moving_mean, moving_var
    v = virtual_batch_size or len(x)
    axes = tuple(range(x.ndim - 1))
    y, means, variances = np.empty_like(x), [], []
    for start in range(0, len(x), v):
        part = x[start : start + v]
        mean, var = part.mean(axis=axes), part.var(axis=axes)
        y[start : start + v] = gamma * (part - mean) / np.sqrt(var + epsilon) + beta
        means.append(mean)
        variances.append(var)
    moving_mean = momentum * moving_mean + (1.0 - momentum) * np.mean(means, axis=0)
    moving_var = momentum * moving_var + (1.0 - momentum) * np.mean(variances, axis=0)
    return y, moving_mean, moving_var


@keras.utils.register_keras_serializable(package="bnexp")
class BatchNorm(keras.layers.Layer):
    """bnexp's own batch normalization over the last axis, with Keras' weights and semantics.

    Weights: gamma, beta (trainable, when scale / center), moving_mean, moving_variance
    (non-trainable): the same four, with the same counts, as keras.layers.BatchNormalization.
    Like Keras, a layer with trainable=False always runs in inference mode.

    Across replicas (tf.distribute), each replica sees its slice of the global batch.
    synchronized=False normalizes each slice by its own statistics (the "ghost batch"
    effect: the statistics of a smaller batch); synchronized=True all-reduces the sums
    so every replica normalizes with the global batch's statistics. The moving
    statistics are mean-aggregated over replicas. virtual_batch_size=v gives the ghost
    batch effect on one device: each run of v examples is normalized by its own
    statistics, the moving statistics move toward their mean over the ghost batches,
    which is what unsynchronized BN on batch/v replicas computes.
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 synchronized=False, virtual_batch_size=None, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.synchronized = bool(synchronized)
        self.virtual_batch_size = virtual_batch_size

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma") if (
            self.scale
        ) else None
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta") if (
            self.center
        ) else None
        # aggregation "mean": replicas' updates of a mirrored variable are averaged
        self.moving_mean = self.add_weight(
            shape=shape, initializer="zeros", name="moving_mean", trainable=False,
            aggregation="mean",
        )
        self.moving_variance = self.add_weight(
            shape=shape, initializer="ones", name="moving_variance", trainable=False,
            aggregation="mean",
        )

    def call(self, inputs, training=None):
        if training and self.trainable:
            if self.virtual_batch_size:
                return self._ghost_call(inputs)
            mean, variance = self._moments(inputs)
            self._update_moving(mean, variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return self._normalize(inputs, mean, variance)

    def _moments(self, inputs):
        """Mean and biased variance over every axis but the last; with synchronized, over
        the global batch of all replicas (two all-reduces: sums, then squared deviations)."""
        axes = list(range(len(inputs.shape) - 1))
        context = tf.distribute.get_replica_context()
        if not (self.synchronized and context and context.num_replicas_in_sync > 1):
            mean = ops.mean(inputs, axis=axes)
            return mean, ops.mean(ops.square(inputs - mean), axis=axes)  # biased, as Keras
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        total, n = context.all_reduce("sum", [tf.reduce_sum(inputs, axis=axes), count])
        mean = total / n
        squares = context.all_reduce("sum", tf.reduce_sum(tf.square(inputs - mean), axis=axes))
        return mean, squares / n

    def _ghost_call(self, inputs):
        """Training mode with ghost batches of virtual_batch_size (the last may be short)."""
        n = tf.shape(inputs)[0]
        ghost = tf.range(n) // self.virtual_batch_size
        groups = (n + self.virtual_batch_size - 1) // self.virtual_batch_size
        flat = tf.reshape(inputs, [n, -1, inputs.shape[-1]])  # (examples, positions, C)
        per_example = tf.shape(flat)[1]
        counts = tf.cast(tf.math.unsorted_segment_sum(tf.fill([n], per_example), ghost, groups),
                         inputs.dtype)[:, None]
        means = tf.math.unsorted_segment_sum(tf.reduce_sum(flat, 1), ghost, groups) / counts
        deviations = flat - tf.gather(means, ghost)[:, None, :]
        variances = tf.math.unsorted_segment_sum(
            tf.reduce_sum(tf.square(deviations), 1), ghost, groups) / counts
        self._update_moving(tf.reduce_mean(means, 0), tf.reduce_mean(variances, 0))
        outputs = deviations / tf.sqrt(tf.gather(variances, ghost)[:, None, :] + self.epsilon)
        outputs = tf.reshape(outputs, tf.shape(inputs))
        return self._affine(outputs)

    def _update_moving(self, mean, variance):
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))

    def _normalize(self, inputs, mean, variance):
        """gamma * (inputs - mean) / sqrt(variance + eps) + beta."""
        return self._affine((inputs - mean) / ops.sqrt(variance + self.epsilon))

    def _affine(self, outputs):
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
            "synchronized": self.synchronized,
            "virtual_batch_size": self.virtual_batch_size,
        }
