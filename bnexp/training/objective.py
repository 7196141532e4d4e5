"""What a run minimises and how: train.loss as Keras computes it, the optimizer the
config names with its learning-rate schedule (both made fresh for every run), and what a
training step updates (`Update`: the variables, the kernels train.l2 penalizes and
optimizer.weight_decay decays).

The schedule is a Keras LearningRateSchedule of the optimizer's iteration count, so the
rate of every step is exact and a run resumed from its checkpoint (which holds the
count) continues it where it stopped. Without a schedule the learning rate is the
optimizer's variable, as it always was (the compiled steps do not bake it in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf
from tensorflow import keras

from bnexp.config import OptimizerConfig
from bnexp.config.schedule import ScheduleConfig
from bnexp.model.residual import leaves

KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)


class Loss:
    """train.loss as Keras computes it, on integer labels: sparse categorical
    cross-entropy, or categorical on one-hot labels, from logits or from probabilities.

    The trap it reproduces on purpose: from_logits=False on outputs without a softmax
    (notebooks 000, 002) makes Keras rescale the outputs to sum to 1 and clip them, a
    different loss from the one intended; bnexp warns about it at start."""

    def __init__(self, name: str = "sparse_categorical_crossentropy", from_logits: bool = True):
        self.sparse = name == "sparse_categorical_crossentropy"
        kind = (keras.losses.SparseCategoricalCrossentropy if self.sparse
                else keras.losses.CategoricalCrossentropy)
        self.mean = kind(from_logits=from_logits)
        self.per_example_fn = kind(from_logits=from_logits, reduction=None)

    def __call__(self, y, outputs):
        """The batch's mean loss."""
        return self.mean(self._labels(y, outputs), outputs)

    def per_example(self, y, outputs):
        return self.per_example_fn(self._labels(y, outputs), outputs)

    def _labels(self, y, outputs):
        return y if self.sparse else tf.one_hot(y, tf.shape(outputs)[-1])


@dataclass
class Update:
    """What a training step updates: `variables` (the optimizer's; train.trainable may
    leave some of the model's trainable ones out), `kernels` (the conv and dense kernels
    among them: what l2 penalizes and weight decay decays) and the l2 coefficient."""

    variables: list
    kernels: list
    l2: float = 0.0

    @classmethod
    def of(cls, model: keras.Model, variables=None, l2: float = 0.0) -> Update:
        """The update of `variables` (default: every trainable variable of model)."""
        variables = list(model.trainable_variables if variables is None else variables)
        chosen = {id(v) for v in variables}
        kernels = [layer.kernel for layer in leaves(model.layers)
                   if isinstance(layer, KERNEL_LAYERS) and id(layer.kernel) in chosen]
        return cls(variables, kernels, l2)

    def prepare(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Build the optimizer on the variables (its slots for them only), its weight decay
        restricted to the kernels (Keras' exclude_from_weight_decay: before the build)."""
        if optimizer.built:
            return
        if optimizer.weight_decay:
            kernels = {id(k) for k in self.kernels}
            optimizer.exclude_from_weight_decay(
                var_list=[v for v in self.variables if id(v) not in kernels])
        optimizer.build(self.variables)

    def penalty(self):
        """train.l2's term of the loss: l2 / 2 * the sum of the kernels' squared entries
        (its gradient: l2 * W)."""
        squares = tf.add_n([tf.reduce_sum(tf.square(tf.convert_to_tensor(k)))
                            for k in self.kernels])
        return tf.cast(self.l2 / 2, squares.dtype) * squares


def make_optimizer(cfg: OptimizerConfig, steps_per_epoch: int | None = None,
                   epochs: int | None = None) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer for optimizer.name (iteration 0, no slots yet); with a
    schedule, its learning rate is the schedule over `epochs` of `steps_per_epoch`."""
    rate = cfg.learning_rate
    if scheduled(cfg):
        if not steps_per_epoch or not epochs:
            raise ValueError("a learning-rate schedule needs the steps per epoch and epochs")
        rate = Schedule.of(cfg, steps_per_epoch, epochs)
    decay = cfg.weight_decay or None  # None: no decay at all (0.0 would still run its ops)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=cfg.momentum,
                                    nesterov=cfg.nesterov, weight_decay=decay)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate, momentum=cfg.momentum,
                                        weight_decay=decay)
    if decay:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=decay)
    return keras.optimizers.Adam(learning_rate=rate)


def scheduled(cfg: OptimizerConfig) -> bool:
    """Whether the learning rate follows a schedule (else it is a constant variable)."""
    return cfg.schedule != ScheduleConfig()


def steps_per_epoch(examples: int, batch: int, smallest: int = 1) -> int:
    """Training steps in an epoch of `examples`, as loop.batch_chunks cuts it: the full
    batches, and a last partial one of at least `smallest` examples."""
    return examples // batch + (examples % batch >= smallest)


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """optimizer.schedule as a Keras LearningRateSchedule: the rate of the step whose
    optimizer iteration count is `step` (from 0), in TensorFlow ops (the compiled steps
    trace it, with its numbers). Counts are in steps: `total` the run's, `warmup`."""

    def __init__(self, rate: float, total: int, name: str = "constant", warmup: int = 0,
                 boundaries=(), every: int = 0, factor: float = 0.1, final: float = 0.0):
        self.rate, self.total, self.name, self.warmup = rate, total, name, warmup
        self.boundaries, self.every = list(boundaries), every
        self.factor, self.final = factor, final

    @classmethod
    def of(cls, cfg: OptimizerConfig, per_epoch: int, epochs: int) -> Schedule:
        """The schedule of cfg, its epochs turned into steps."""
        s = cfg.schedule
        unit = per_epoch if s.unit == "epochs" else 1
        return cls(cfg.learning_rate, epochs * per_epoch, s.name,
                   s.warmup_steps or s.warmup_epochs * per_epoch,
                   [b * unit for b in s.boundaries or ()], (s.every or 0) * unit,
                   s.factor, s.final_fraction)

    def __call__(self, step):
        s = tf.cast(step, tf.float32)
        rate = tf.constant(self.rate, tf.float32)
        if self.name == "step":
            passed = (tf.floor(s / self.every) if self.every else tf.reduce_sum(
                tf.cast(s >= tf.constant(self.boundaries, tf.float32), tf.float32)))
            rate = rate * tf.pow(tf.constant(self.factor, tf.float32), passed)
        elif self.name == "cosine":
            t = tf.clip_by_value((s - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0)
            rate = rate * (self.final + (1 - self.final) * 0.5 * (1 + tf.cos(math.pi * t)))
        if self.warmup:
            rate = rate * tf.minimum(1.0, (s + 1) / self.warmup)
        return rate

    def get_config(self) -> dict:
        return {"rate": self.rate, "total": self.total, "name": self.name,
                "warmup": self.warmup, "boundaries": self.boundaries, "every": self.every,
                "factor": self.factor, "final": self.final}


def learning_rate_at(optimizer: keras.optimizers.Optimizer, step: int) -> float:
    """The learning rate the optimizer uses at iteration `step` (from 0): its schedule's
    there, or its constant rate."""
    rate = optimizer._learning_rate  # Keras keeps the schedule here (no public handle)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(rate(max(step, 0)))
    return float(rate.numpy())
