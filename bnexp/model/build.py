"""LeNet and MLP builders with BN placed as the config says.

A hidden layer is a block: core (Conv2D or Dense) -> [BN] -> activation -> [BN],
with BN before the activation (Ioffe & Szegedy, d2l) or after it. With
`use_bias: auto`, a core layer whose output feeds BN directly has no bias: BN
subtracts the batch mean, so a bias there is wasted (beta takes its role).
The output layer gives logits (no BN, no softmax).
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow import keras

from bnexp.config import BNConfig, ModelConfig
from bnexp.model.bn import BatchNorm


def build(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int = 10) -> keras.Model:
    """A Sequential model for `cfg` on inputs of `input_shape` (H, W, C)."""
    body = ARCHITECTURES[cfg.arch](cfg)
    layers = [keras.Input(shape=input_shape), *body, keras.layers.Dense(
        num_classes, kernel_initializer=cfg.init, name="logits"
    )]
    return keras.Sequential(layers, name=f"{cfg.arch}_bn_{cfg.bn.placement}")


def lenet(cfg: ModelConfig) -> list[keras.layers.Layer]:
    """d2l's LeNet: [Conv(valid) -> pool 2x2] per filter count, flatten, dense blocks."""
    layers = [_bn(cfg.bn, "input_bn")] if cfg.bn.input else []
    pool = keras.layers.AveragePooling2D if cfg.pooling == "avg" else keras.layers.MaxPooling2D
    for i, filters in enumerate(cfg.filters, start=1):
        def conv(use_bias, filters=filters, i=i):
            return keras.layers.Conv2D(
                filters, cfg.kernel_size, padding="valid", use_bias=use_bias,
                kernel_initializer=cfg.init, name=f"conv{i}",
            )
        layers += _block(conv, "conv", f"conv{i}", cfg)
        layers.append(pool(pool_size=2, strides=2, name=f"pool{i}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    return layers + _dense_blocks(cfg)


def mlp(cfg: ModelConfig) -> list[keras.layers.Layer]:
    """Flatten, [BN on the pixels], then one dense block per hidden width (Geron's MLP)."""
    layers = [keras.layers.Flatten(name="flatten")]
    if cfg.bn.input:
        layers.append(_bn(cfg.bn, "input_bn"))
    return layers + _dense_blocks(cfg)


ARCHITECTURES = {"lenet": lenet, "mlp": mlp}


def _dense_blocks(cfg: ModelConfig) -> list[keras.layers.Layer]:
    layers = []
    for i, width in enumerate(cfg.hidden, start=1):
        def dense(use_bias, width=width, i=i):
            return keras.layers.Dense(
                width, use_bias=use_bias, kernel_initializer=cfg.init, name=f"dense{i}"
            )
        layers += _block(dense, "dense", f"dense{i}", cfg)
    return layers


def _block(core, kind: str, name: str, cfg: ModelConfig) -> list[keras.layers.Layer]:
    """core -> [BN] -> activation -> [BN], as `cfg.bn.placement` and `cfg.bn.layers` say."""
    placement = cfg.bn.placement if cfg.bn.layers in ("all", kind) else "none"
    use_bias = placement != "before" if cfg.use_bias == "auto" else cfg.use_bias
    layers = [core(use_bias)]
    if placement == "before":
        layers.append(_bn(cfg.bn, f"{name}_bn"))
    layers.append(keras.layers.Activation(cfg.activation, name=f"{name}_{cfg.activation}"))
    if placement == "after":
        layers.append(_bn(cfg.bn, f"{name}_bn"))
    return layers


def _bn(cfg: BNConfig, name: str) -> keras.layers.Layer:
    """Keras' BatchNormalization or bnexp's own, with the configured hyperparameters."""
    args = dict(momentum=cfg.momentum, epsilon=cfg.epsilon, center=cfg.center, scale=cfg.scale,
                synchronized=cfg.synchronized)
    if cfg.impl == "keras":
        return keras.layers.BatchNormalization(name=name, **args)
    return BatchNorm(name=name, virtual_batch_size=cfg.virtual_batch_size, **args)


def param_counts(model: keras.Model) -> dict[str, int]:
    """Trainable and non-trainable parameter counts, as model.summary() counts them."""
    def count(weights):
        return int(sum(math.prod(w.shape) for w in weights))
    return {"trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


def layer_rows(model: keras.Model) -> list[dict]:
    """One row per layer: name, type, output shape, parameter counts."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape)
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")",
            "params": int(sum(np.prod(w.shape) for w in layer.weights)),
            "trainable": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
        })
    return rows
