"""The resnet preset as a layer list: He et al. 2016's CIFAR ResNet (section 4.2),
adapted to the input (28x28x1 or 32x32x3), with SkipInit and Fixup.

stem: conv 3x3 (filters[0]) -> norm -> activation; then per stage (widths `filters`,
stride 2 at the start of every stage but the first) n basic blocks of [conv 3x3 ->
norm -> activation -> conv 3x3 -> norm] + shortcut -> activation; global average
pooling; dense logits. depth = 2 n stages + 2 layers with weights. No TensorFlow.

The trap: `model.bn.placement: none` removes every normalization, and without Fixup or
SkipInit such a ResNet starts with exploding activations (Zhang et al. 2019): which is
what the study of those variants measures, not a bug.
"""

from __future__ import annotations

from bnexp.config.base import MAX_WIDTH, NUM_CLASSES
from bnexp.config.layers import Activation, Conv, Dense, Initializer
from bnexp.config.network import GlobalAvgPool, Residual, ScalarBias, ScalarScale


def resnet_layers(model, norm) -> list:
    """The resnet of `model` (a ModelConfig) as a layer list; norm(name) gives the
    normalization layer model.bn names (None: model.bn.placement none)."""
    stages = len(model.filters)
    n = (model.depth - 2) // (2 * stages)
    fixup = model.residual_init == "fixup"
    layers = [norm("input_bn")] if model.bn.input and norm("input_bn") else []
    layers += _unit(Conv(type="conv", filters=model.filters[0], kernel_size=3, padding="same",
                         kernel_initializer=model.init, name="conv1"), model, norm,
                    fixup, activation=True)
    for s, width in enumerate(model.filters, start=1):
        for b in range(1, n + 1):
            stride = 2 if s > 1 and b == 1 else 1
            layers.append(_block(model, norm, f"stage{s}_block{b}", width, stride,
                                 blocks=n * stages))
    layers.append(GlobalAvgPool(type="global_avg_pool", name="pool"))
    if fixup:
        layers.append(ScalarBias(type="scalar_bias", name="logits_bias"))
    zero = "zeros" if fixup else model.init
    layers.append(Dense(type="dense", units=NUM_CLASSES, kernel_initializer=zero,
                        name="logits"))
    return layers


def _block(model, norm, name: str, width: int, stride: int, blocks: int) -> Residual:
    fixup = model.residual_init == "fixup"
    first_init = _fixup_init(blocks) if fixup else model.init
    branch = [ScalarBias(type="scalar_bias", name=f"{name}_bias1a")] if fixup else []
    branch += _unit(Conv(type="conv", filters=width, kernel_size=3, strides=stride,
                         padding="same", kernel_initializer=first_init, name=f"{name}_conv1"),
                    model, norm, fixup, activation=True, bias_after=f"{name}_bias1b")
    if fixup:
        branch.append(ScalarBias(type="scalar_bias", name=f"{name}_bias2a"))
    branch += _unit(Conv(type="conv", filters=width, kernel_size=3, padding="same",
                         kernel_initializer="zeros" if fixup else model.init,
                         name=f"{name}_conv2"), model, norm, fixup, activation=False)
    if fixup:
        branch += [ScalarScale(type="scalar_scale", init=1.0, name=f"{name}_scale"),
                   ScalarBias(type="scalar_bias", name=f"{name}_bias2b")]
    changes = stride != 1 or width != _width_before(model, name)
    return Residual(type="residual", name=name, layers=branch,
                    shortcut=model.shortcut if changes else "identity",
                    scale_init=0.0 if model.residual_init == "skipinit" else None,
                    activation=model.activation)


def _unit(conv: Conv, model, norm, fixup: bool, activation: bool,
          bias_after: str | None = None) -> list:
    """conv -> [norm] -> [activation]: the conv has a bias only without a norm after it
    (model.use_bias auto) and never with Fixup (its scalar biases take that role)."""
    layer = norm(f"{conv.name}_bn")
    use_bias = layer is None if model.use_bias == "auto" else model.use_bias
    out = [conv.model_copy(update={"use_bias": use_bias and not fixup})]
    out += [layer] if layer is not None else []
    if fixup and activation:
        out.append(ScalarBias(type="scalar_bias", name=bias_after or f"{conv.name}_bias"))
    if activation:
        out.append(Activation(type="activation", activation=model.activation,
                              name=f"{conv.name}_{model.activation}"))
    return out


def _width_before(model, name: str) -> int:
    """The channels a block's input has: the previous stage's width at a stage's first
    block, else its own stage's."""
    stage, block = (int(part.removeprefix("stage").removeprefix("block"))
                    for part in name.split("_"))
    return model.filters[stage - 2] if block == 1 and stage > 1 else model.filters[stage - 1]


def _fixup_init(blocks: int) -> Initializer:
    """Fixup's first branch layer: He's normal init (fan_out, as the reference code) scaled
    by L^(-1/(2m-2)) with m = 2 layers per branch: variance 2 / fan_out / L."""
    return Initializer(name="variance_scaling", scale=2.0 / blocks, mode="fan_out",
                       distribution="untruncated_normal")


def resnet_defaults(model):
    """The resnet ModelConfig `model` with its own defaults where the config does not set
    them (filters, activation, init); ValueError for what only lenet and mlp take."""
    own = {"filters": [16, 32, 64], "activation": "relu", "init": "he_normal"}
    for key, value in own.items():
        if key not in model.model_fields_set:
            setattr(model, key, value)
    if model.hidden is not None or model.dropout is not None:
        raise ValueError("hidden and dropout are for lenet and mlp: a resnet ends in "
                         "global average pooling and its logits")
    for key in ("kernel_size", "pooling"):
        if getattr(model, key) != type(model).model_fields[key].default:
            raise ValueError(f"{key} is lenet's: a resnet's convolutions are 3x3 with "
                             "same padding and it pools once, globally")
    stages = len(model.filters)
    if not model.filters or min(model.filters) <= 0 or max(model.filters) > MAX_WIDTH:
        raise ValueError(f"filters must be a non-empty list of widths from 1 to {MAX_WIDTH}")
    if (model.depth - 2) % (2 * stages) or model.depth < 2 * stages + 2:
        examples = ", ".join(str(2 * stages * n + 2) for n in (1, 2, 3, 5))
        raise ValueError(f"depth {model.depth}: a resnet of {stages} stages has depth "
                         f"{2 * stages}n + 2 ({examples}, ...)")
    if model.bn.placement == "after":
        raise ValueError("bn.placement: after is not a resnet's: use before (conv -> "
                         "norm -> activation) or none")
    if model.residual_init == "fixup" and model.bn.placement != "none":
        raise ValueError("residual_init: fixup is for a resnet without normalization: "
                         "set bn.placement: none")
    return model
