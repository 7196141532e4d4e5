"""Every model as its list of layers: the lenet and mlp presets expanded, a layer list
named and its BN layers completed from `model.bn`. What `model_layers` returns is what
gets built (bnexp.model.build), shown (`bnexp summary`) and checked (`bnexp validate`).

The presets expand exactly as bnexp always built them (same layers, names and order),
so earlier runs keep their meaning. No TensorFlow here.
"""

from __future__ import annotations

from collections import Counter

from bnexp.config.base import MAX_LAYERS, NUM_CLASSES
from bnexp.config.layers import (
    BN,
    NORM_TYPES,
    Activation,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    Pool,
)
from bnexp.config.network import MAX_NESTING, leaf_shapes, leaves, nesting, shapes
from bnexp.config.normalization import BNConfig, check_ramp
from bnexp.config.resnet import resnet_layers
from bnexp.config.schema import Config, input_shape
from bnexp.config.sections import ModelConfig

NORM_KEYS = ("impl", "epsilon", "center", "scale", "gamma_initializer", "beta_initializer")
BN_KEYS = (*NORM_KEYS, "momentum", "moving_mean_initializer", "moving_variance_initializer",
           "behaviour", "fault", "renorm_clipping", "renorm_momentum", "renorm_ramp")
KIND_LAYERS = {"group": GroupNorm, "layer": LayerNorm, "instance": InstanceNorm}


def model_layers(model: ModelConfig) -> list:
    """The model's layers, each named, BN layers with every setting filled in."""
    if model.arch == "layers":
        return _named(_completed(model.layers, model.bn))
    if model.arch == "resnet":
        placement = model.bn.placement if model.bn.layers in ("all", "conv") else "none"
        return resnet_layers(model, lambda name: None if placement == "none"
                             else _preset_bn(model.bn, name))
    body = _lenet(model) if model.arch == "lenet" else _mlp(model)
    if model.dropout is not None and model.dropout.placement == "after_bn":
        body.append(Dropout(type="dropout", rate=model.dropout.rate, name="dropout"))
    return [*body, Dense(type="dense", units=NUM_CLASSES, kernel_initializer=model.init,
                         name="logits")]


def has_bn(model: ModelConfig) -> bool:
    """True if the model has at least one BN layer (batch norm or renorm: the layers with
    moving statistics, whose training and inference modes differ)."""
    return any(layer.type == "bn" for layer in leaves(model_layers(model)))


def batch_stats_eval(config: Config) -> bool:
    """diagnostics.batch_stats_eval resolved: null means on for a model with BN."""
    wanted = config.diagnostics.batch_stats_eval
    return has_bn(config.model) if wanted is None else wanted


def check_shapes(config: Config) -> None:
    """ValueError naming the layer if the model cannot be built on the data's images, or
    if its last layer does not give one output per class."""
    model, shape = config.model, input_shape(config.data)

    def where(i, layer) -> str:
        if model.arch == "layers":
            return f"model.layers[{i}] ({layer.type})"
        hint = (" (check kernel_size, filters, data.pad_to)"
                if layer.type in ("conv", "max_pool", "avg_pool", "dense") else "")
        return f"model: cannot build {model.arch} on inputs of shape {shape}{hint}: " \
               f"layer {layer.name}"

    layers = model_layers(model)
    if nesting(layers) > MAX_NESTING:
        raise ValueError(f"model.layers: residual blocks nest {nesting(layers)} deep: at "
                         f"most {MAX_NESTING}")
    count = len(leaves(layers))
    if count > MAX_LAYERS:  # hidden: [1, 1, ...] makes three layers per width
        raise ValueError(f"model: {count:,} layers once expanded: at most {MAX_LAYERS:,}")
    out = shapes(layers, shape, where)
    if out and out[-1] != (NUM_CLASSES,):
        raise ValueError(f"model.layers[{len(out) - 1}]: the last layer gives shape {out[-1]}; "
                         f"the model must end in {NUM_CLASSES} outputs (dense, units: "
                         f"{NUM_CLASSES})")
    _check_size(leaf_shapes(layers, shape), config.data.batch_size)


MAX_WEIGHTS = 100_000_000  # d2l's LeNet has 62,000, the 300-100 MLP 266,000
MAX_BATCH_ACTIVATION_BYTES = 16 << 30  # every layer's float32 output, kept for backprop


def _check_size(computed: list[tuple], batch_size: int) -> None:
    """ValueError if the model would not fit in a machine's memory: more than MAX_WEIGHTS
    weights (with the gradients and Adam's two slots, 16 bytes each), or more than
    MAX_BATCH_ACTIVATION_BYTES of layer outputs for one batch. The trap it closes: a
    model of 8.6 billion weights passed `validate` and failed in TensorFlow's allocator."""
    weights = sum(_weights(layer, shape_in) for layer, shape_in, _ in computed)
    if weights > MAX_WEIGHTS:
        raise ValueError(f"model: {weights:,} weights: at most {MAX_WEIGHTS:,} (with "
                         f"gradients and optimizer slots: {16 * weights / 1e9:,.1f} GB)")
    elements = sum(_product(shape_out) for _, _, shape_out in computed)
    total = 4 * elements * batch_size
    if total > MAX_BATCH_ACTIVATION_BYTES:
        raise ValueError(f"model: its layer outputs for one batch of {batch_size:,} take "
                         f"{total / 2**30:,.1f} GiB: at most "
                         f"{MAX_BATCH_ACTIVATION_BYTES >> 30} GiB (lower data.batch_size)")


def weight_count(config: Config) -> int:
    """How many weights the config's model holds (Keras' count_params), built or not."""
    computed = leaf_shapes(model_layers(config.model), input_shape(config.data))
    return sum(_weights(layer, shape_in) for layer, shape_in, _ in computed)


def _weights(layer, shape_in: tuple[int, ...]) -> int:
    """How many weights a layer holds on inputs of this shape."""
    channels = shape_in[-1]
    if layer.type == "conv":
        return (layer.kernel_size ** 2 * channels + layer.use_bias) * layer.filters
    if layer.type == "dense":
        return (channels + layer.use_bias) * layer.units
    if layer.type in ("scalar_bias", "scalar_scale"):
        return 1
    if layer.type not in NORM_TYPES:
        return 0
    affine = (bool(layer.scale) + bool(layer.center)) * channels  # gamma, beta
    if layer.type == "bn":  # moving mean and variance; renorm: moving stddev, renorm mean
        # and stddev, and with a ramp its step counter
        moving = 5 * channels + (layer.renorm_ramp is not None) if layer.renorm else 2 * channels
        return affine + moving
    return affine


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def _lenet(model: ModelConfig) -> list:
    """d2l's LeNet: [conv block -> 2x2 pool] per filter count, flatten, dense blocks."""
    layers = [_preset_bn(model.bn, "input_bn")] if model.bn.input else []
    for i, filters in enumerate(model.filters, start=1):
        conv = Conv(type="conv", filters=filters, kernel_size=model.kernel_size,
                    kernel_initializer=model.init, name=f"conv{i}")
        layers += _block(conv, "conv", model)
        layers.append(Pool(type=f"{model.pooling}_pool", pool_size=2, strides=2,
                           name=f"pool{i}"))
    layers.append(Flatten(type="flatten", name="flatten"))
    return layers + _dense_blocks(model)


def _mlp(model: ModelConfig) -> list:
    """Flatten, [BN on the pixels], then one dense block per hidden width (Geron's MLP)."""
    layers = [Flatten(type="flatten", name="flatten")]
    if model.bn.input:
        layers.append(_preset_bn(model.bn, "input_bn"))
    return layers + _dense_blocks(model)


def _dense_blocks(model: ModelConfig) -> list:
    layers = []
    for i, width in enumerate(model.hidden, start=1):
        dense = Dense(type="dense", units=width, kernel_initializer=model.init,
                      name=f"dense{i}")
        layers += _block(dense, "dense", model)
    return layers


def _block(core, kind: str, model: ModelConfig) -> list:
    """core -> [BN] -> activation -> [BN], as model.bn.placement and model.bn.layers say;
    use_bias auto drops the bias of a core layer that feeds BN."""
    bn = model.bn
    placement = bn.placement if bn.layers in ("all", kind) else "none"
    use_bias = placement != "before" if model.use_bias == "auto" else model.use_bias
    name = core.name
    layers = [core.model_copy(update={"use_bias": use_bias})]
    if placement == "before":
        layers.append(_preset_bn(bn, f"{name}_bn"))
    layers.append(Activation(type="activation", activation=model.activation,
                             name=f"{name}_{model.activation}"))
    dropout = model.dropout
    if dropout is not None and placement == "after" and dropout.placement == "before_bn":
        layers.append(Dropout(type="dropout", rate=dropout.rate, name=f"{name}_dropout"))
    if placement == "after":
        layers.append(_preset_bn(bn, f"{name}_bn"))
    if dropout is not None and placement != "after" and dropout.placement == "before_bn":
        layers.append(Dropout(type="dropout", rate=dropout.rate, name=f"{name}_dropout"))
    return layers


def _preset_bn(bn: BNConfig, name: str):
    """The normalization layer model.bn.kind names, with model.bn's settings."""
    return _complete(BN(type="bn", name=name), bn)


def _completed(layers: list, bn: BNConfig) -> list:
    """_complete on every layer, inside residual blocks too."""
    return [layer.model_copy(update={"layers": _completed(layer.layers, bn)})
            if layer.type == "residual" else _complete(layer, bn) for layer in layers]


def _complete(layer, bn: BNConfig):
    """A normalization layer's unset settings taken from model.bn; a `bn` layer becomes
    the normalization model.bn.kind names (renorm: a `bn` layer with renorm on); other
    layers as they are. ValueError for a setting the resulting kind does not take."""
    if layer.type in ("group_norm", "layer_norm", "instance_norm"):
        return layer.model_copy(update={key: getattr(bn, key) for key in NORM_KEYS
                                        if getattr(layer, key) is None})
    if layer.type != "bn":
        return layer
    if bn.kind in KIND_LAYERS:
        return _as_kind(layer, bn)
    update = {key: getattr(bn, key) for key in BN_KEYS if getattr(layer, key) is None}
    if layer.renorm is None:
        update["renorm"] = bn.kind == "renorm"
    done = layer.model_copy(update=update)
    _check_renorm(done)
    return done


def _as_kind(layer: BN, bn: BNConfig):
    """A `bn` layer of a list as the group, layer or instance norm model.bn.kind names."""
    target = KIND_LAYERS[bn.kind]
    own = [key for key in BN.model_fields if key not in target.model_fields
           and getattr(layer, key) is not None]
    if own:
        raise ValueError(f"model.layers: layer {layer.name or 'bn'} sets {own[0]}, which "
                         f"model.bn.kind: {bn.kind} does not take")
    fields = {key: getattr(layer, key) for key in target.model_fields
              if key in BN.model_fields and key != "type"}
    fields = {**fields, **{key: getattr(bn, key) for key in NORM_KEYS if fields[key] is None}}
    if bn.kind == "group":
        fields["groups"] = bn.groups
    return target(type=f"{bn.kind}_norm", **fields)


def _check_renorm(layer: BN) -> None:
    """ValueError for renorm settings on a plain BN layer, or renorm with what it excludes."""
    where = f"model.layers: layer {layer.name or 'bn'}"
    if not layer.renorm:
        if layer.renorm_clipping is not None or layer.renorm_ramp is not None:
            raise ValueError(f"{where}: renorm_clipping and renorm_ramp need renorm: true")
        return
    if layer.behaviour != "standard" or layer.fault is not None:
        raise ValueError(f"{where}: renorm works with behaviour: standard and no fault only")
    try:
        check_ramp(layer.renorm_ramp, layer.renorm_clipping, layer.impl)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _named(layers: list) -> list:
    """Unnamed layers get their kind and number: conv1, bn1, max_pool1, dense2, ...,
    counted over the whole model, residual blocks' layers included; names are unique
    across it (a shortcut's layers are named after their block: residual1_proj)."""
    counts: Counter = Counter()
    named = _name_all(layers, counts)
    taken = Counter(_all_names(named))
    duplicate = next((n for n, k in taken.items() if k > 1), None)
    if duplicate:
        raise ValueError(f"model.layers: two layers are named {duplicate!r}")
    return named


def _name_all(layers: list, counts: Counter) -> list:
    named = []
    for layer in layers:
        counts[layer.type] += 1
        update = {"name": layer.name or f"{layer.type}{counts[layer.type]}"}
        if layer.type == "residual":
            update["layers"] = _name_all(layer.layers, counts)
        named.append(layer.model_copy(update=update))
    return named


def _all_names(layers: list) -> list[str]:
    names = []
    for layer in layers:
        names.append(layer.name)
        if layer.type == "residual":
            names += _all_names(layer.layers)
            names += [f"{layer.name}_proj", f"{layer.name}_pad", f"{layer.name}_scale"]
    return names
