"""Freezing on a built model: the variables the optimizer updates (train.trainable and a
layer's `trainable: false`, decided without TensorFlow by bnexp.config.trainable), the
run's `Update`, and the parameter counts `bnexp summary` and summary.json show.

The trap it avoids: Keras' own `layer.trainable = False` would also switch a BN layer
to inference mode (moving statistics in training steps, never updated: the "frozen BN
in fine-tuning" experiment, a different one, `behaviour: frozen_moving_stats`). A
frozen variable here is only left out of tape.gradient and apply_gradients; Keras
still calls it trainable, and BN still trains on batch statistics.
"""

from __future__ import annotations

import math

from tensorflow import keras

from bnexp.config import Config
from bnexp.config.trainable import frozen_layers
from bnexp.model.build import layer_rows
from bnexp.model.residual import all_layers, leaves
from bnexp.training.objective import Update


def trained_variables(config: Config, model: keras.Model) -> list:
    """The model's trainable variables the optimizer updates, in Keras' order (all of
    them unless the config freezes some)."""
    names = frozen_layers(config)
    if not names:
        return list(model.trainable_variables)
    layers = {layer.name: layer for layer in all_layers(model.layers)}
    missing = names - set(layers)
    if missing:  # bnexp builds one Keras layer per entry, with its name
        raise ValueError(f"no layer named {sorted(missing)[0]} in the built model")
    out = {id(v) for name in names for v in layers[name].trainable_weights}
    return [v for v in model.trainable_variables if id(v) not in out]


def update_for(config: Config, model: keras.Model) -> Update:
    """What the run's training step updates: its variables, kernels and train.l2."""
    return Update.of(model, trained_variables(config, model), config.train.l2)


def param_counts(config: Config, model: keras.Model) -> dict[str, int]:
    """{"trainable", "frozen", "non_trainable"}: the weights the optimizer updates, the
    ones Keras counts as trainable that freezing keeps at their initial values, and the
    non-trainable ones (BN's moving statistics). Their sum is Keras' count_params."""
    def count(weights):
        return int(sum(math.prod(w.shape) for w in weights))
    trained = count(trained_variables(config, model))
    return {"trainable": trained, "frozen": count(model.trainable_weights) - trained,
            "non_trainable": count(model.non_trainable_weights)}


def summary_rows(config: Config, model: keras.Model) -> list[dict]:
    """build.layer_rows, each variable's `trainable` reading "frozen" where it is."""
    trained = {id(v) for v in trained_variables(config, model)}
    frozen = {f"{layer.name}/{w.name}" for layer in leaves(model.layers)
              for w in layer.trainable_weights if id(w) not in trained}
    rows = layer_rows(model)
    for row in rows:
        row["weights"] = [(name, shape, "frozen" if name in frozen else trainable)
                          for name, shape, trainable in row["weights"]]
    return rows
