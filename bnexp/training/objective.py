"""What a run minimises and how: train.loss as Keras computes it, and the optimizer
the config names (both made fresh for every run)."""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras

from bnexp.config import OptimizerConfig


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


def make_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer for optimizer.name (iteration 0, no slots yet)."""
    if cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate)
