"""Keras models from their list of layers (bnexp.config.presets.model_layers).

The presets (lenet, mlp) and a config's own `model.layers` go through the same
builder: one Keras layer per entry, with its name, in order. BN layers become Keras'
BatchNormalization (impl: keras) or bnexp's own BatchNorm (impl: scratch), with the
behaviour and fault the config chose. With the presets, a core layer whose output
feeds BN has no bias (use_bias: auto): BN subtracts the batch mean, so a bias there is
wasted (beta takes its role). Models take pixels scaled by `to_unit`. The trap for a
layer list: it is built as written, so the output layer's activation must agree with
train.from_logits.
"""

from __future__ import annotations

import contextlib
import math
import sys

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp.config import ModelConfig, model_layers
from bnexp.config.layers import Initializer, groups_for
from bnexp.config.network import shapes, shortcut_layers
from bnexp.errors import BadInput
from bnexp.model import bn as bn_module
from bnexp.model.group_norm import GroupNorm
from bnexp.model.noise import Noise
from bnexp.model.residual import ChannelPad, Residual, ScalarBias, ScalarScale, walk

FRAMES_PER_LAYER = 8  # Keras' graph walk: 3 frames a layer measured; room to spare
GROUPED = ("group_norm", "layer_norm", "instance_norm")
POOLS = {"max_pool": keras.layers.MaxPooling2D, "avg_pool": keras.layers.AveragePooling2D}
SIMPLE = {  # the layers with no settings but their own
    "global_avg_pool": lambda spec: keras.layers.GlobalAveragePooling2D(name=spec.name),
    "scalar_bias": lambda spec: ScalarBias(name=spec.name),
    "scalar_scale": lambda spec: ScalarScale(spec.init, name=spec.name),
    "channel_pad": lambda spec: ChannelPad(spec.stride, spec.extra, name=spec.name),
}


def to_unit(x) -> tf.Tensor:
    """uint8 pixels (as data.py loads them and the steps keep them on the device) ->
    float32 in [0, 1]: what every model takes. NumPy arrays in give a tensor."""
    return tf.cast(x, tf.float32) / 255.0


def build(cfg: ModelConfig, input_shape: tuple[int, ...]) -> keras.Model:
    """A Sequential model for `cfg` on inputs of `input_shape` (H, W, C)."""
    layers = keras_layers(model_layers(cfg), tuple(input_shape), cfg)
    name = "layers" if cfg.arch == "layers" else f"{cfg.arch}_bn_{cfg.bn.placement}"
    with recursion_room(len(layers)):
        return keras.Sequential([keras.Input(shape=input_shape), *layers], name=name)


@contextlib.contextmanager
def recursion_room(n_layers: int):
    """Python's recursion limit raised for a model of n_layers: Keras walks a model's
    graph recursively, a few frames a layer, and the documented 1,000 layers raised
    RecursionError at Python's default of 1,000 frames."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, FRAMES_PER_LAYER * n_layers + 1000))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def keras_layers(specs: list, shape: tuple[int, ...], cfg: ModelConfig) -> list:
    """The Keras layers of a layer list on inputs of `shape`, residual blocks with theirs."""
    out = []
    for spec, after in zip(specs, shapes(specs, shape), strict=True):
        if spec.type == "residual":
            out.append(_residual(spec, shape, after, cfg))
        else:
            out.append(keras_layer(spec, cfg, shape[-1]))
        shape = after
    return out


def _residual(spec, shape: tuple[int, ...], after: tuple[int, ...], cfg) -> Residual:
    """A residual block: its branch (a SkipInit scalar last), its shortcut's layers."""
    branch = keras_layers(spec.layers, shape, cfg)
    if spec.scale_init is not None:
        branch.append(ScalarScale(spec.scale_init, name=f"{spec.name}_scale"))
    shortcut = [keras_layer(s, cfg, after[-1]) for s in shortcut_layers(spec, shape, after)]
    return Residual(branch, shortcut, activation=spec.activation, name=spec.name)


def check_buildable(models) -> None:
    """BadInput naming the config file if a (ModelConfig, input shape, config file) cannot
    be built, e.g. a kernel too big for the images."""
    for model_cfg, shape, source in models:
        try:
            build(model_cfg, shape)
        except ValueError as e:
            first = str(e).strip().splitlines()[0]
            raise BadInput(
                f"{source}: model: cannot build {model_cfg.arch} on inputs of shape "
                f"{tuple(shape)} (check kernel_size, filters, data.pad_to): {first}"
            ) from None
        finally:
            keras.backend.clear_session(free_memory=False)  # gc.collect: 0.2 s a call


def keras_layer(spec, cfg: ModelConfig, channels: int) -> keras.layers.Layer:
    """The Keras layer of one entry of the model's list, on inputs of `channels` channels
    (or features)."""
    if spec.type in GROUPED:
        return _group_norm(spec, groups_for(spec, channels))
    if spec.type in SIMPLE:
        return SIMPLE[spec.type](spec)
    if spec.type == "dropout":
        return keras.layers.Dropout(spec.rate, name=spec.name)
    if spec.type == "noise":
        return Noise(spec.stddev, mean=spec.mean, scale_stddev=spec.scale_stddev,
                     resample=spec.resample, name=spec.name)
    if spec.type == "conv":
        return keras.layers.Conv2D(
            spec.filters, spec.kernel_size, strides=spec.strides, padding=spec.padding,
            use_bias=spec.use_bias, activation=spec.activation, name=spec.name,
            kernel_initializer=initializer(spec.kernel_initializer),
            bias_initializer=initializer(spec.bias_initializer))
    if spec.type == "dense":
        return keras.layers.Dense(
            spec.units, use_bias=spec.use_bias, activation=spec.activation, name=spec.name,
            kernel_initializer=initializer(spec.kernel_initializer),
            bias_initializer=initializer(spec.bias_initializer))
    if spec.type == "bn":
        return _batch_norm(spec, cfg)
    if spec.type == "activation":
        return keras.layers.Activation(spec.activation, name=spec.name)
    if spec.type in POOLS:
        return POOLS[spec.type](pool_size=spec.pool_size, strides=spec.strides or spec.pool_size,
                                padding=spec.padding, name=spec.name)
    return keras.layers.Flatten(name=spec.name)


def initializer(spec):
    """A config initializer as Keras takes it: a name as it is, arguments as an object."""
    if spec == "constant":  # Keras' own "constant" has no value: KeyError when built
        spec = Initializer(name="constant")
    if spec is None or isinstance(spec, str):
        return spec
    return keras.initializers.get(spec.keras_config())


def _batch_norm(spec, cfg: ModelConfig) -> keras.layers.Layer:
    """Keras' BatchNormalization or bnexp's own, with the layer's settings; initializers,
    behaviour and fault only where the config sets them (else each class's defaults)."""
    args = dict(momentum=spec.momentum, epsilon=spec.epsilon, center=spec.center,
                scale=spec.scale, synchronized=cfg.bn.synchronized, name=spec.name)
    for key in ("gamma_initializer", "beta_initializer", "moving_mean_initializer",
                "moving_variance_initializer"):
        if getattr(spec, key) is not None:
            args[key] = initializer(getattr(spec, key))
    special = {k: v for k, v in (("behaviour", spec.behaviour), ("fault", spec.fault))
               if v not in (None, "standard")}
    if spec.renorm:
        args.update(renorm=True, renorm_momentum=spec.renorm_momentum,
                    renorm_clipping=_clipping(spec.renorm_clipping))
    if spec.impl == "keras":
        if special:
            return bn_module.keras_batch_norm(**special, **args)
        return keras.layers.BatchNormalization(**args)
    ramp = spec.renorm_ramp.model_dump() if spec.renorm and spec.renorm_ramp else None
    return bn_module.BatchNorm(virtual_batch_size=cfg.bn.virtual_batch_size, **special,
                               **args, **({"renorm_ramp": ramp} if ramp else {}))


def _clipping(clipping) -> dict:
    """renorm_clipping as Keras takes it: the limits that are set."""
    return {} if clipping is None else clipping.model_dump(exclude_none=True)


def _group_norm(spec, groups: int) -> keras.layers.Layer:
    """Keras' GroupNormalization or bnexp's own GroupNorm: group, layer (one group) or
    instance (one channel per group) normalization."""
    args = dict(groups=groups, epsilon=spec.epsilon, center=spec.center, scale=spec.scale,
                name=spec.name)
    for key in ("gamma_initializer", "beta_initializer"):
        if getattr(spec, key) is not None:
            args[key] = initializer(getattr(spec, key))
    if spec.impl == "keras":
        return keras.layers.GroupNormalization(**args)
    return GroupNorm(**args)


def param_counts(model: keras.Model) -> dict[str, int]:
    """Trainable and non-trainable parameter counts, as model.summary() counts them."""
    def count(weights):
        return int(sum(math.prod(w.shape) for w in weights))
    return {"trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


def layer_rows(model: keras.Model) -> list[dict]:
    """One row per layer: name, type, output shape, parameter counts; a residual block's
    row (its total) is followed by its layers' (branch, then shortcut), indented."""
    shapes_out = {}
    walk(model.layers, tf.zeros((1, *model.input_shape[1:])),
         after=lambda layer, y: shapes_out.setdefault(id(layer), tuple(y.shape)))
    return _rows(model.layers, shapes_out, depth=0)


def _rows(layers, shapes_out: dict, depth: int) -> list[dict]:
    rows = []
    for layer in layers:
        shape = (None, *shapes_out[id(layer)][1:])
        block = isinstance(layer, Residual)
        rows.append({
            "name": "  " * depth + layer.name,
            "type": _type_name(layer),
            "output_shape": "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")",
            "params": int(sum(np.prod(w.shape) for w in layer.weights)),
            "trainable": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
            "weights": [] if block else [(f"{layer.name}/{w.name}", tuple(w.shape), w.trainable)
                                         for w in layer.weights],
        })
        if block:
            rows += _rows([*layer.branch, *layer.shortcut], shapes_out, depth + 1)
    return rows


def _type_name(layer) -> str:
    if isinstance(layer, GroupNorm | keras.layers.GroupNormalization):
        return f"{type(layer).__name__} ({layer.groups} groups)"
    if isinstance(layer, Residual):
        kind = "identity" if not layer.shortcut else (
            "pad" if isinstance(layer.shortcut[0], ChannelPad) else "projection")
        return f"Residual ({kind} shortcut)"
    return type(layer).__name__
