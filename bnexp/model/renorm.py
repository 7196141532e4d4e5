"""Batch renormalization (Ioffe 2017) for bnexp's scratch BatchNorm (bnexp/model/bn.py),
computed as keras.layers.BatchNormalization(renorm=True) computes it, plus the paper's
ramp of the clipping limits, which Keras' layer lacks (its limits are fixed)."""

from __future__ import annotations

import tensorflow as tf
from tensorflow.keras import ops


class Renorm:
    """Batch renormalization (Ioffe 2017) for BatchNorm, as Keras computes it: the batch
    is normalized by its own statistics, then corrected by r = sigma_B / sigma and
    d = (mu_B - mu) / sigma (sigma at least sqrt(eps)), both clipped and without
    gradient, where mu and sigma are moving averages with renorm_momentum. The inference
    statistics move with `momentum`: the mean, and the standard deviation
    sqrt(var_B + eps), from which moving_variance = stddev^2 - eps. Weights after
    BatchNorm's four, in Keras' order: moving_stddev, renorm_mean, renorm_stddev, and
    with a ramp a step counter. The ramp (Ioffe 2017): r clipped to 1 and d to 0 for
    hold_steps training steps, then rmax rising linearly to its limit at step rmax_at
    (rmin = 1 / the current rmax) and dmax to its limit at dmax_at."""

    def __init__(self, clipping, momentum, ramp):
        self.clipping, self.momentum, self.ramp = dict(clipping or {}), float(momentum), ramp
        self.step = None

    def build(self, layer, shape):
        def stddev_init(shape, dtype=None):
            return ops.sqrt(layer.moving_variance_initializer(shape, dtype=dtype))

        layer.moving_stddev, layer.renorm_mean, layer.renorm_stddev = (
            layer.add_weight(shape=shape, name=name, initializer=init, trainable=False,
                             autocast=False, aggregation="mean")
            for name, init in (("moving_stddev", stddev_init),
                               ("renorm_mean", layer.moving_mean_initializer),
                               ("renorm_stddev", stddev_init)))
        if self.ramp:
            self.step = layer.add_weight(shape=(), name="renorm_step", initializer="zeros",
                                         trainable=False, autocast=False,
                                         aggregation="only_first_replica")

    def limits(self):
        """(rmin, rmax, dmax) now: the clipping's, or the ramp's at this step (None: no
        limit)."""
        rmin, rmax, dmax = (self.clipping.get(k) for k in ("rmin", "rmax", "dmax"))
        if not self.ramp:
            return rmin, rmax, dmax
        hold, step = self.ramp["hold_steps"], self.step

        def rising(top, start, at):
            span = max(at - hold, 1)
            grown = start + (top - start) * tf.clip_by_value((step - hold) / span, 0.0, 1.0)
            return tf.where(step < hold, start, grown)

        rmax = rising(rmax, 1.0, self.ramp["rmax_at"])
        return 1.0 / rmax, rmax, rising(dmax, 0.0, self.ramp["dmax_at"])

    def normalize(self, layer, x, mean, variance):
        stddev = tf.sqrt(variance + layer.epsilon)
        sigma = tf.maximum(ops.cast(layer.renorm_stddev, x.dtype),
                           tf.sqrt(tf.cast(layer.epsilon, x.dtype)))
        r = stddev / sigma
        d = (mean - ops.cast(layer.renorm_mean, x.dtype)) / sigma
        rmin, rmax, dmax = (_as(limit, x.dtype) for limit in self.limits())
        if rmin is not None:
            r = tf.maximum(r, rmin)
        if rmax is not None:
            r = tf.minimum(r, rmax)
        if dmax is not None:
            d = tf.clip_by_value(d, -dmax, dmax)
        return layer._normalize(x, mean, variance, tf.stop_gradient(r), tf.stop_gradient(d))

    def update(self, layer, mean, variance):
        stddev = tf.sqrt(variance + layer.epsilon)
        m, rm = layer.momentum, self.momentum
        for variable, value, momentum in ((layer.renorm_mean, mean, rm),
                                          (layer.renorm_stddev, stddev, rm),
                                          (layer.moving_mean, mean, m),
                                          (layer.moving_stddev, stddev, m)):
            variable.assign(ops.cast(variable, value.dtype) * momentum + value * (1.0 - momentum))
        moving_stddev = ops.cast(layer.moving_stddev, stddev.dtype)
        layer.moving_variance.assign(tf.nn.relu(moving_stddev * moving_stddev - layer.epsilon))
        if self.step is not None:
            self.step.assign_add(1.0)

    def config(self) -> dict:
        return {"renorm": True, "renorm_clipping": self.clipping,
                "renorm_momentum": self.momentum, "renorm_ramp": self.ramp}


def _as(limit, dtype):
    """A limit in dtype. The trap: tf.cast(0.8, tf.float64) makes a float32 tensor first
    (0.800000011920929): a Python number must become a tensor of dtype directly."""
    if limit is None or tf.is_tensor(limit):
        return limit if limit is None else tf.cast(limit, dtype)
    return tf.constant(limit, dtype)
