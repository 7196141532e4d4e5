"""Batch normalization from scratch: a NumPy reference and a Keras layer.

Training mode normalizes with the batch's own moments, computed over every axis
but `axis` (per feature for (N, D) inputs, per channel for (N, H, W, C)), and
moves the running statistics toward them:

    moving = momentum * moving + (1 - momentum) * batch

Inference mode normalizes with the running statistics and changes nothing.
Both use the biased batch variance, as Keras does (Ioffe & Szegedy use the
unbiased m/(m-1) one for inference; with batches of 32+ the difference is small).

`behaviour` changes which statistics each mode uses (both implementations:
`BatchNorm` here, `keras_batch_norm` in bnexp/model/keras_bn.py):

- standard: as above, Keras' semantics.
- moving_stats_in_training: training normalizes with the moving statistics as they
  stand before the step (what inference would give), and still moves them toward the
  batch's. The output then no longer depends on the batch (d2l's exercise).
- batch_stats_at_inference: inference normalizes with the batch's own statistics and
  updates nothing; a prediction then depends on the rest of its batch (the trap of a
  custom layer always called with training=True). Training as standard.
- frozen_moving_stats: training normalizes with the batch's statistics, but the moving
  statistics never leave their initial values (the trap of an update that never runs:
  inference normalizes with mean 0 / variance 1 and accuracy sits near chance).

`fault` reproduces a known broken implementation on purpose (scratch only, never a
default). It replaces the update rule; the behaviour still decides which statistics
normalize and whether an update happens:

- mxnet_moving_average: notebook 004's MXNet update, exactly as written,
      moving_mean[:] = moving_momentum + moving_mean + (1.0*-moving_momentum)*variance
  i.e. moving_mean <- moving_mean + momentum - momentum * batch_variance, and the
  moving variance never updated. The correct update is
      moving_mean = momentum * moving_mean + (1 - momentum) * batch_mean
      moving_variance = momentum * moving_variance + (1 - momentum) * batch_variance
  With moving_variance_initializer zeros (as in 004), inference divides by sqrt(eps):
  outputs of order 1/sqrt(eps) times the input's spread (316 times for eps = 1e-5).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import ops

from bnexp.model.keras_bn import BEHAVIOURS, FAULTS, check_behaviour, keras_batch_norm
from bnexp.model.renorm import Renorm

__all__ = ["BEHAVIOURS", "FAULTS", "BatchNorm", "batch_norm_numpy", "keras_batch_norm"]


def _modes(behaviour, training):
    """(normalize with batch statistics?, update the moving statistics?) for a call."""
    if training:
        return behaviour != "moving_stats_in_training", behaviour != "frozen_moving_stats"
    return behaviour == "batch_stats_at_inference", False


def batch_norm_numpy(x, gamma, beta, moving_mean, moving_var, *, momentum, epsilon, training,
                     virtual_batch_size=None, behaviour="standard", fault=None, axis=-1):
    """(y, new_moving_mean, new_moving_var) for a NumPy batch; the reference the tests use.

    With virtual_batch_size v, batch statistics are those of each run of v examples (the
    last may be shorter), and the moving statistics move toward the mean over those ghost
    batches of their means and variances. `behaviour`, `fault`: as BatchNorm."""
    by_batch, update = _modes(check_behaviour(behaviour), training)
    x = np.moveaxis(x, axis, -1)
    y = gamma * (x - moving_mean) / np.sqrt(moving_var + epsilon) + beta
    if by_batch or update:
        v = virtual_batch_size or len(x)
        axes = tuple(range(x.ndim - 1))
        y_batch, means, variances = np.empty_like(x), [], []
        for start in range(0, len(x), v):
            part = x[start : start + v]
            mean, var = part.mean(axis=axes), part.var(axis=axes)
            y_batch[start : start + v] = gamma * (part - mean) / np.sqrt(var + epsilon) + beta
            means.append(mean)
            variances.append(var)
        mean, var = np.mean(means, axis=0), np.mean(variances, axis=0)
        y = y_batch if by_batch else y
    if update and fault == "mxnet_moving_average":
        moving_mean = momentum + moving_mean + (1.0 * -momentum) * var
    elif update:
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    return np.moveaxis(y, -1, axis), moving_mean, moving_var


@keras.utils.register_keras_serializable(package="bnexp")
class BatchNorm(keras.layers.Layer):
    """bnexp's own batch normalization, with Keras' arguments, weights and semantics.

    The arguments are keras.layers.BatchNormalization's (renorm as Keras computes it:
    `Renorm`), plus virtual_batch_size, behaviour, fault (module docstring) and
    renorm_ramp. An initializer is a name,
    a Keras initializer or a {"class_name", "config"} dict; None means the default.
    Weights: gamma, beta (trainable, when scale / center), moving_mean, moving_variance
    (non-trainable): the same four, with the same counts, as Keras. Like Keras, a layer
    with trainable=False always runs in inference mode; integer and float16 inputs are
    normalized in float32 (float16 overflows past 65504: a variance of 70000 would be inf)
    and the output has the layer's compute dtype (float16 under mixed_float16). No masking.

    Across replicas (tf.distribute), each replica sees its slice of the global batch.
    synchronized=False normalizes each slice by its own statistics (the "ghost batch"
    effect: the statistics of a smaller batch); synchronized=True all-reduces the sums
    so every replica normalizes with the global batch's statistics. The moving
    statistics are mean-aggregated over replicas. virtual_batch_size=v gives the ghost
    batch effect on one device: each run of v examples is normalized by its own
    statistics, the moving statistics move toward their mean over the ghost batches,
    which is what unsynchronized BN on batch/v replicas computes. "Batch statistics"
    in a behaviour are these: ghost, per replica or global.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, virtual_batch_size=None,
                 behaviour="standard", fault=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, renorm_ramp=None, **kwargs):
        super().__init__(**kwargs)
        self.renorm = Renorm(renorm_clipping, renorm_momentum, renorm_ramp) if renorm else None
        if self.renorm and (behaviour != "standard" or fault or virtual_batch_size):
            raise ValueError("renorm works with behaviour standard, no fault and no ghost "
                             "batches only")
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        if virtual_batch_size is not None and synchronized:
            raise ValueError("virtual_batch_size and synchronized exclude each other")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        # None = the default (BNConfig's null), not add_weight's glorot_uniform
        self.beta_initializer = keras.initializers.get(beta_initializer or "zeros")
        self.gamma_initializer = keras.initializers.get(gamma_initializer or "ones")
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer or "zeros")
        self.moving_variance_initializer = keras.initializers.get(
            moving_variance_initializer or "ones")
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.synchronized = bool(synchronized)
        self.virtual_batch_size = virtual_batch_size
        self.behaviour = check_behaviour(behaviour)
        self.fault = fault
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(f"axis {self.axis} is out of bounds for input shape {input_shape}")
        shape = (input_shape[self.axis],)
        # autocast=False: float32 weights stay float32 under a float16 autocast scope
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape, name="gamma", initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                autocast=False)
        if self.center:
            self.beta = self.add_weight(
                shape=shape, name="beta", initializer=self.beta_initializer,
                regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                autocast=False)
        # aggregation "mean": replicas' updates of a mirrored variable are averaged
        self.moving_mean = self.add_weight(
            shape=shape, name="moving_mean", initializer=self.moving_mean_initializer,
            trainable=False, autocast=False, aggregation="mean")
        self.moving_variance = self.add_weight(
            shape=shape, name="moving_variance", initializer=self.moving_variance_initializer,
            trainable=False, autocast=False, aggregation="mean")
        if self.renorm:
            self.renorm.build(self, shape)
        self.input_spec = keras.layers.InputSpec(
            ndim=len(input_shape), axes={self.axis: input_shape[self.axis]})

    def call(self, inputs, training=None):
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        axis = self.axis % len(x.shape)
        if axis != len(x.shape) - 1:  # the rest works on channels last
            x = ops.moveaxis(x, axis, -1)
        by_batch, update = _modes(self.behaviour, training and self.trainable)
        if by_batch or update:
            mean, variance, ghosts = self._batch_statistics(x)
        if not by_batch:  # the moving statistics, read before the update below
            outputs = self._normalize(x, self.moving_mean, self.moving_variance)
        elif self.renorm:
            outputs = self.renorm.normalize(self, x, mean, variance)
        elif ghosts is not None:
            outputs = self._affine(ghosts)
        else:
            outputs = self._normalize(x, mean, variance)
        if update:
            self._update_moving(mean, variance)
        if axis != len(x.shape) - 1:
            outputs = ops.moveaxis(outputs, -1, axis)
        return ops.cast(outputs, self.compute_dtype)

    def _batch_statistics(self, x):
        """(mean, variance) to normalize and update with, and with ghost batches x already
        standardized by each ghost batch's own statistics (else None)."""
        if self.virtual_batch_size:
            ghosts, mean, variance = self._ghost_statistics(x)
            return mean, variance, ghosts
        mean, variance = self._moments(x)
        return mean, variance, None

    def _moments(self, inputs):
        """Mean and biased variance over every axis but the last; with synchronized, over
        the global batch of all replicas (two all-reduces: sums, then squared deviations)."""
        axes = list(range(len(inputs.shape) - 1))
        context = tf.distribute.get_replica_context()
        if not (self.synchronized and context and context.num_replicas_in_sync > 1):
            return tf.nn.moments(inputs, axes)  # biased variance, as Keras (its own op)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        total, n = context.all_reduce("sum", [tf.reduce_sum(inputs, axis=axes), count])
        mean = total / n
        squares = context.all_reduce("sum", tf.reduce_sum(tf.square(inputs - mean), axis=axes))
        return mean, squares / n

    def _ghost_statistics(self, inputs):
        """Ghost batches of virtual_batch_size (the last may be short): each normalized by
        its own statistics; the means over ghost batches of their means and variances."""
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
        outputs = deviations / tf.sqrt(tf.gather(variances, ghost)[:, None, :] + self.epsilon)
        return (tf.reshape(outputs, tf.shape(inputs)), tf.reduce_mean(means, 0),
                tf.reduce_mean(variances, 0))

    def _update_moving(self, mean, variance):
        m = self.momentum
        if self.renorm:
            self.renorm.update(self, mean, variance)
            return
        moving_mean = ops.cast(self.moving_mean, mean.dtype)
        if self.fault == "mxnet_moving_average":  # 004 as written: a reproduced bug
            self.moving_mean.assign(m + moving_mean + (1.0 * -m) * variance)
            return
        moving_variance = ops.cast(self.moving_variance, variance.dtype)
        self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(moving_variance * m + variance * (1.0 - m))

    def _normalize(self, x, mean, variance, r=None, d=None):
        """gamma * (x - mean) / sqrt(variance + eps) + beta, as x * scale + offset with the
        per-channel scale and offset computed first: two passes over x instead of four
        (what tf.nn.batch_normalization, and so Keras' layer, does). With renorm's r and
        d: gamma * ((x - mean) / sqrt(variance + eps) * r + d) + beta."""
        gamma = 1.0 if self.gamma is None else ops.cast(self.gamma, x.dtype)
        beta = 0.0 if self.beta is None else ops.cast(self.beta, x.dtype)
        if r is not None:
            gamma, beta = r * gamma, d * gamma + beta
        scale = tf.math.rsqrt(ops.cast(variance, x.dtype) + self.epsilon) * gamma
        return x * scale + (beta - ops.cast(mean, x.dtype) * scale)

    def _affine(self, outputs):
        if self.gamma is not None:
            outputs = outputs * ops.cast(self.gamma, outputs.dtype)
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, outputs.dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        initializer, regularizer, constraint = (
            keras.initializers.serialize, keras.regularizers.serialize,
            keras.constraints.serialize)
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializer(self.beta_initializer),
            "gamma_initializer": initializer(self.gamma_initializer),
            "moving_mean_initializer": initializer(self.moving_mean_initializer),
            "moving_variance_initializer": initializer(self.moving_variance_initializer),
            "beta_regularizer": regularizer(self.beta_regularizer),
            "gamma_regularizer": regularizer(self.gamma_regularizer),
            "beta_constraint": constraint(self.beta_constraint),
            "gamma_constraint": constraint(self.gamma_constraint),
            "synchronized": self.synchronized,
            "virtual_batch_size": self.virtual_batch_size,
            "behaviour": self.behaviour,
            "fault": self.fault,
            **(self.renorm.config() if self.renorm else {}),
        }

