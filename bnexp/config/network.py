"""The layer list as a network: residual blocks, the layers only networks use (global
average pooling, scalar biases and multipliers), and every layer's shapes worked out
without TensorFlow.

A `{type: residual, layers: [...]}` entry holds its branch as a sub-list; its
shortcut (identity, a 1x1 projection + the branch's normalization, or He et al.'s
option A: strided identity zero-padded in channels) is derived from the shapes
(`shortcut_layers`), so the config says what the block is and validate, the weight
counts and the Keras builder agree on what it holds. The trap: a residual's inner
layers are no entries of `model.layers`, so whatever walks the model must walk
`leaves`, not the top-level list.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bnexp.config.layers import (
    ACTIVATIONS,
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
    Noise,
    Pool,
    _Layer,
    groups_for,
)

MAX_NESTING = 8  # residual blocks inside residual blocks


class GlobalAvgPool(_Layer):
    """The mean of each channel over the image's positions: (H, W, C) -> (C,) (Keras
    GlobalAveragePooling2D; ResNet's last pooling)."""

    type: Literal["global_avg_pool"]


class ScalarBias(_Layer):
    """One trainable scalar added to every value (Fixup's scalar biases), starting at 0."""

    type: Literal["scalar_bias"]


class ScalarScale(_Layer):
    """One trainable scalar every value is multiplied by (Fixup's multiplier, SkipInit's
    alpha), starting at `init`."""

    type: Literal["scalar_scale"]
    init: float = Field(1.0, ge=-1e6, le=1e6)
    """The multiplier's initial value."""


class Residual(_Layer):
    """A residual block: `layers` (the branch) applied to the input and added to the
    shortcut, then `activation` if given. out = act(shortcut(x) + alpha * branch(x))."""

    type: Literal["residual"]
    layers: list[LayerSpec] = Field(min_length=1, max_length=1000)
    """The residual branch, a layer list like model.layers (residual blocks inside it
    nest; at most 8 deep)."""
    shortcut: Literal["identity", "projection", "pad"] = "identity"
    """identity: x itself (the branch must keep its input's shape); projection: a 1x1
    convolution (a dense layer on vectors) with the branch's stride and output channels,
    without bias, then the branch's first normalization layer (He et al.'s option B);
    pad: x strided and zero-padded in channels, no weights (option A)."""
    scale_init: float | None = Field(None, ge=-1e6, le=1e6)
    """null: none; a number: the branch is multiplied by a trainable scalar starting there
    (0: SkipInit, De & Smith 2020: each block starts as the identity)."""
    activation: ACTIVATIONS | None = None
    """Applied to the sum (ResNet: relu); null: none."""


LayerSpec = Annotated[Conv | Dense | BN | GroupNorm | LayerNorm | InstanceNorm | Dropout
                      | Noise | Activation | Pool | Flatten | GlobalAvgPool | ScalarBias
                      | ScalarScale | Residual,
                      Field(discriminator="type")]
Residual.model_rebuild()


class ChannelPad(_Layer):
    """The pad shortcut (not a config entry): x[::stride, ::stride] with `extra` zero
    channels after its own."""

    type: Literal["channel_pad"] = "channel_pad"
    stride: int = 1
    extra: int = 0


def shapes(layers: list, input_shape: tuple[int, ...], where=None) -> list[tuple[int, ...]]:
    """Each layer's output shape (without the batch), from input_shape (H, W, C); ValueError
    naming the layer (where(i, layer): how to name it) that cannot be built on its input."""
    shape, out = tuple(input_shape), []
    where = where or (lambda i, layer: f"model.layers[{i}] ({layer.type})")
    for i, layer in enumerate(layers):
        here = where(i, layer)
        if layer.type == "residual":
            shape = _block_shape(layer, shape, here)
        else:
            shape = _next_shape(layer, shape, here)
        if 0 in shape or any(d < 0 for d in shape):
            raise ValueError(f"{here}: output shape {shape} is empty: its input is too "
                             "small for it")
        out.append(shape)
    return out


def _block_shape(block: Residual, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    inner = shapes(block.layers, shape,
                   lambda i, layer: f"{where.split(' (')[0]}.layers[{i}] ({layer.type})")
    shortcut_layers(block, shape, inner[-1], where)  # refuses what cannot be added
    return inner[-1]


def shortcut_layers(block: Residual, shape_in: tuple[int, ...], shape_out: tuple[int, ...],
                    where: str | None = None) -> list:
    """The layers of a block's shortcut from its input to its branch's output shape:
    [] (identity), [conv or dense, the branch's first norm] (projection) or
    [ChannelPad] (pad). ValueError naming `where` if that shortcut cannot make the shape."""
    where = where or f"residual block {block.name}"
    if block.shortcut == "identity":
        if shape_in != shape_out:
            raise ValueError(f"{where}: an identity shortcut needs the branch to keep its "
                             f"input's shape {shape_in}; it gives {shape_out} (use "
                             "shortcut: projection or pad)")
        return []
    if len(shape_in) != len(shape_out):
        raise ValueError(f"{where}: the branch turns {shape_in} into {shape_out}; a "
                         "shortcut cannot follow a flatten or global_avg_pool")
    stride = _stride(shape_in, shape_out, where)
    name = block.name or "residual"
    if block.shortcut == "pad":
        extra = shape_out[-1] - shape_in[-1]
        if extra < 0:
            raise ValueError(f"{where}: a pad shortcut cannot drop channels ({shape_in[-1]} "
                             f"-> {shape_out[-1]}): use shortcut: projection")
        return [ChannelPad(stride=stride, extra=extra, name=f"{name}_pad")]
    norm = next((layer for layer in leaves(block.layers) if layer.type in NORM_TYPES), None)
    if len(shape_in) == 3:
        core = Conv(type="conv", filters=shape_out[-1], kernel_size=1, strides=stride,
                    use_bias=norm is None, kernel_initializer=_kernel_init(block),
                    name=f"{name}_proj")
    else:
        core = Dense(type="dense", units=shape_out[-1], use_bias=norm is None,
                     kernel_initializer=_kernel_init(block), name=f"{name}_proj")
    if norm is None:
        return [core]
    return [core, norm.model_copy(update={"name": f"{name}_proj_{norm.type}"})]


def _kernel_init(block: Residual):
    """The projection's initializer: the branch's first kernel's."""
    first = next((layer for layer in leaves(block.layers) if layer.type in ("conv", "dense")),
                 None)
    return first.kernel_initializer if first is not None else "glorot_uniform"


def _stride(shape_in, shape_out, where: str) -> int:
    """The stride s with ceil(H_in / s) == H_out on both sides (1 for vectors)."""
    if len(shape_in) != 3:
        return 1
    for s in range(1, max(shape_in[:2]) + 1):
        if all(-(-a // s) == b for a, b in zip(shape_in[:2], shape_out[:2], strict=True)):
            return s
    raise ValueError(f"{where}: no strided shortcut turns {shape_in[:2]} into "
                     f"{shape_out[:2]} (the branch must shrink both sides by one stride)")


def leaves(layers: list) -> list:
    """Every entry that is not a residual block, in order, blocks' branches included (their
    shortcuts' layers are derived from shapes: `leaf_shapes` lists them too)."""
    out = []
    for layer in layers:
        out += leaves(layer.layers) if layer.type == "residual" else [layer]
    return out


def leaf_shapes(layers: list, input_shape: tuple[int, ...]) -> list[tuple]:
    """(layer, input shape, output shape) of every layer that computes something: the
    leaves of branches and the shortcuts' layers too, in the order they are built."""
    out, shape = [], tuple(input_shape)
    for layer in layers:
        if layer.type != "residual":
            (after,) = shapes([layer], shape)
            out.append((layer, shape, after))
        else:
            inner = leaf_shapes(layer.layers, shape)
            after = inner[-1][2]
            extra = shortcut_layers(layer, shape, after)
            block = inner + [(s, shape if i == 0 else after, after)
                             for i, s in enumerate(extra)]
            if layer.scale_init is not None:
                block.append((ScalarScale(type="scalar_scale", init=layer.scale_init,
                                          name=f"{layer.name}_scale"), after, after))
            if not layer.trainable:  # a frozen block freezes all it holds
                block = [(s.model_copy(update={"trainable": False}), a, b)
                         for s, a, b in block]
            out += block
        shape = after
    return out


def nesting(layers: list) -> int:
    """How deep residual blocks nest in the list (0: none)."""
    return max((1 + nesting(layer.layers) for layer in layers if layer.type == "residual"),
               default=0)


def _next_shape(layer, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if layer.type in ("conv", "max_pool", "avg_pool", "global_avg_pool"):
        if len(shape) != 3:
            raise ValueError(f"{where}: needs an image (H, W, C), gets shape {shape}: "
                             "put it before flatten")
        if layer.type == "global_avg_pool":
            return (shape[2],)
        size = layer.kernel_size if layer.type == "conv" else layer.pool_size
        stride = layer.strides or size
        h, w = (_spatial(d, size, stride, layer.padding) for d in shape[:2])
        return (h, w, layer.filters if layer.type == "conv" else shape[2])
    if layer.type == "flatten":
        total = 1
        for d in shape:
            total *= d
        return (total,)
    if layer.type == "dense":
        return (*shape[:-1], layer.units)
    if layer.type in ("group_norm", "instance_norm"):
        _check_groups(layer, shape, where)
    return shape


def _check_groups(layer, shape: tuple[int, ...], where: str) -> None:
    if layer.type == "instance_norm" and len(shape) != 3:
        raise ValueError(f"{where}: instance norm needs an image (H, W, C), gets shape "
                         f"{shape}: on a dense layer's output each group holds one value, "
                         "so it would output beta alone (use layer_norm or group_norm)")
    groups = groups_for(layer, shape[-1])
    if shape[-1] % groups:
        raise ValueError(f"{where}: groups {groups} does not divide the {shape[-1]} "
                         "channels of its input")


def _spatial(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0
