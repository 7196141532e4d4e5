"""Keras' own BatchNormalization, with bnexp's behaviours added by Keras' own math.

`keras_batch_norm("standard", ...)` is plain keras.layers.BatchNormalization. The other
behaviours (what each means: bnexp/model/bn.py) are a small subclass that only chooses
which of Keras' two code paths runs, or normalizes with Keras' own moments:

- moving_stats_in_training: training returns what Keras' inference path gives (the
  moving statistics as they were before this step), then runs Keras' training path for
  its update of the moving statistics, its output discarded.
- batch_stats_at_inference: inference normalizes with Keras' moments of the batch and
  updates nothing; training is Keras' own.
- frozen_moving_stats: training normalizes with Keras' moments of the batch and updates
  nothing; inference is Keras' own.

"Inference" is Keras' rule: training=False, or a layer with trainable=False. Faults are
scratch-only (bnexp.model.bn.BatchNorm): Keras' layer has no broken update to reproduce.
"""

from __future__ import annotations

from tensorflow import keras
from tensorflow.keras import ops

BEHAVIOURS = ("standard", "moving_stats_in_training", "batch_stats_at_inference",
              "frozen_moving_stats")
FAULTS = ("mxnet_moving_average",)


def check_behaviour(behaviour: str) -> str:
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}")
    return behaviour


def keras_batch_norm(behaviour: str = "standard", **kwargs) -> keras.layers.Layer:
    """keras.layers.BatchNormalization(**kwargs) for "standard", else KerasBehaviourBN.

    fault=None is accepted and dropped; a fault is an error (scratch only). An initializer
    given as None is dropped: Keras' default, not add_weight's glorot_uniform."""
    if kwargs.pop("fault", None) is not None:
        raise ValueError("faults are reproduced by the scratch layer only (impl: scratch)")
    kwargs = {k: v for k, v in kwargs.items() if not (k.endswith("_initializer") and v is None)}
    if check_behaviour(behaviour) == "standard":
        return keras.layers.BatchNormalization(**kwargs)
    return KerasBehaviourBN(behaviour=behaviour, **kwargs)


@keras.utils.register_keras_serializable(package="bnexp")
class KerasBehaviourBN(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with one of bnexp's non-standard behaviours."""

    def __init__(self, behaviour="moving_stats_in_training", **kwargs):
        super().__init__(**kwargs)
        self.behaviour = check_behaviour(behaviour)
        if self.renorm and behaviour != "standard":
            raise ValueError(f"behaviour {behaviour} is not defined with renorm=True")

    def call(self, inputs, training=None, mask=None):
        train = bool(training) and self.trainable
        if self.behaviour == "moving_stats_in_training" and train:
            outputs = super().call(inputs, training=False, mask=mask)  # reads before the update
            super().call(inputs, training=True, mask=mask)  # Keras' update; output unused
            return outputs
        if (self.behaviour, train) in (("batch_stats_at_inference", False),
                                       ("frozen_moving_stats", True)):
            return self._normalize_by_batch(inputs, mask)
        return super().call(inputs, training=training, mask=mask)

    def _normalize_by_batch(self, inputs, mask):
        """Keras' training-mode normalization (its casts, moments and formula) without the
        update of the moving statistics."""
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = ops.cast(inputs, compute_dtype)  # float16 / integers: statistics in float32
        mean, variance = self._moments(inputs, mask)
        outputs = ops.batch_normalization(
            x=inputs, mean=mean, variance=variance, axis=self.axis,
            offset=ops.cast(self.beta, compute_dtype) if self.center else None,
            scale=ops.cast(self.gamma, compute_dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "behaviour": self.behaviour}
