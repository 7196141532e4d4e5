"""Injected noise as a layer: Santurkar et al. 2018's "noisy BN" when placed after BN.

In a training step the layer returns x * a + b, with b ~ N(mean, stddev^2) and
a ~ N(1, scale_stddev^2), drawn afresh for every value (resample: element) or once per
unit (channel) per step and shared by the batch (resample: step: the distribution of
the unit's output shifts and scales anew at every step, the "time-varying" noise the
paper adds). Outside training steps it is the identity. Draws come from the layer's
Keras SeedGenerator, whose state is a variable of the model: seeded by the run's seed
and saved in its checkpoint, so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras


@keras.utils.register_keras_serializable(package="bnexp")
class Noise(keras.layers.Layer):
    """x * a + b in training, x otherwise (module docstring)."""

    def __init__(self, stddev, mean=0.0, scale_stddev=0.0, resample="element", seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if resample not in ("element", "step"):
            raise ValueError(f"resample must be element or step, not {resample!r}")
        self.stddev, self.mean = float(stddev), float(mean)
        self.scale_stddev, self.resample, self.seed = float(scale_stddev), resample, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = tf.shape(inputs)
        if self.resample == "step":  # one draw per unit, broadcast over batch and positions
            shape = tf.concat([tf.ones_like(shape[:-1]), shape[-1:]], 0)
        outputs = inputs
        if self.scale_stddev:
            outputs = outputs * keras.random.normal(
                shape, mean=1.0, stddev=self.scale_stddev, dtype=inputs.dtype,
                seed=self.seed_generator)
        return outputs + keras.random.normal(shape, mean=self.mean, stddev=self.stddev,
                                             dtype=inputs.dtype, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "mean": self.mean,
                "scale_stddev": self.scale_stddev, "resample": self.resample,
                "seed": self.seed}

