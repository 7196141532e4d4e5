"""What trains, without TensorFlow: the layers whose weights the optimizer leaves at their
initial values (`train.trainable`, a layer's `trainable: false`), and the rules `bnexp
validate` applies to them.

Freezing decides only which variables the training step updates
(bnexp/training/freezing.py); it never sets Keras' layer.trainable, which would also
switch BN to inference mode. Refused, in one line each: a config where nothing would
train, `trainable: false` on a layer without weights, and train.l2 or
optimizer.weight_decay where no conv or dense kernel trains (they would change nothing).
"""

from __future__ import annotations

from bnexp.config.layers import NORM_TYPES
from bnexp.config.network import leaf_shapes, leaves
from bnexp.config.presets import model_layers
from bnexp.config.schema import Config, input_shape

KERNEL_TYPES = ("conv", "dense")
SCALAR_TYPES = ("scalar_bias", "scalar_scale")


def has_weights(layer) -> bool:
    """Whether a layer (of model_layers) has weights an optimizer could update: a conv or
    dense kernel, a normalization's gamma or beta."""
    if layer.type in KERNEL_TYPES or layer.type in SCALAR_TYPES:
        return True
    return layer.type in NORM_TYPES and (layer.center is not False or layer.scale is not False)


def frozen(layer, trainable: str) -> bool:
    """Whether `train.trainable` or the layer's own `trainable: false` freezes it."""
    norm = layer.type in NORM_TYPES
    return (not layer.trainable or (trainable == "norm_only" and not norm)
            or (trainable == "all_but_norm" and norm))


def frozen_layers(config: Config) -> set[str]:
    """The names of the model's layers with weights that do not train (inside residual
    blocks and their shortcuts too; a block with trainable: false freezes all it holds)."""
    return {layer.name for layer in computing_layers(config)
            if has_weights(layer) and frozen(layer, config.train.trainable)}


def computing_layers(config: Config) -> list:
    """Every layer of the built model that is no residual block, shortcuts' included."""
    layers = model_layers(config.model)
    return [layer for layer, _, _ in leaf_shapes(layers, input_shape(config.data))]


def _holds_weights(layer) -> bool:
    """has_weights, for a residual block: anything it holds (its projection shortcut, its
    SkipInit scalar) has."""
    if layer.type != "residual":
        return has_weights(layer)
    return (layer.shortcut == "projection" or layer.scale_init is not None
            or any(_holds_weights(inner) for inner in layer.layers))


def check_trains(config: Config) -> None:
    """ValueError, one line naming the key, where freezing leaves nothing to train or a
    setting with nothing to act on."""
    top = model_layers(config.model)
    for i, layer in enumerate(top):
        if not layer.trainable and not _holds_weights(layer):
            raise ValueError(f"model.layers[{i}] ({layer.type}): trainable: false on a layer "
                             "without weights to freeze")
    for layer in leaves(top):
        if not layer.trainable and not has_weights(layer):
            raise ValueError(f"model.layers: layer {layer.name} ({layer.type}): trainable: "
                             "false on a layer without weights to freeze")
    layers = computing_layers(config)
    which = config.train.trainable
    trained = [layer for layer in layers if has_weights(layer) and not frozen(layer, which)]
    if not trained:
        why = ("no normalization layer with gamma or beta trains" if which == "norm_only"
               else "every layer with weights is frozen")
        raise ValueError(f"train.trainable: {which}: nothing would train ({why})")
    if not any(layer.type in KERNEL_TYPES for layer in trained):
        for key, value in (("train.l2", config.train.l2),
                           ("optimizer.weight_decay", config.optimizer.weight_decay)):
            if value:
                raise ValueError(f"{key}: no conv or dense kernel trains (train.trainable: "
                                 f"{which}), so it would change nothing")
