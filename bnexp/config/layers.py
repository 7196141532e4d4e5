"""The model as a list of layers: every layer a notebook can write, typed, and its shapes
worked out without TensorFlow.

`model.arch: layers` with `model.layers: [...]` gives any sequential model: conv,
dense, bn, activation, max_pool, avg_pool, flatten, each with its own settings, in
any order, so BN can sit anywhere and the output layer is the user's. The presets
(lenet, mlp) expand to such a list (`expand`), which is what gets built. `shapes`
checks that a list can be built on the data's input shape, naming the layer that
cannot (`bnexp validate` runs it; no TensorFlow).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ACTIVATIONS = Literal["relu", "sigmoid", "elu", "tanh", "selu", "softmax", "linear"]
INIT_NAMES = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                     "lecun_normal", "lecun_uniform", "random_normal", "random_uniform",
                     "truncated_normal", "zeros", "ones", "constant"]
BEHAVIOURS = Literal["standard", "moving_stats_in_training", "batch_stats_at_inference",
                     "frozen_moving_stats"]
FAULTS = Literal["mxnet_moving_average"]


class Strict(BaseModel):
    """The base of every part of a config: strict, no extra keys, no inf or NaN."""

    # strict: YAML already types values, so "256" (a string) for an int is a mistake to
    # report, not to coerce; extra="forbid": a typo is an error; allow_inf_nan=False: .inf,
    # .nan and 1e309 are no learning rates or epsilons.
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


class Initializer(Strict):
    """A Keras initializer with its arguments: `he_normal`, or {name: random_normal,
    stddev: 0.01}. Arguments a name does not take are an error."""

    name: INIT_NAMES
    """Keras' initializer name (glorot_uniform is d2l's Xavier)."""
    mean: float | None = None
    """random_normal, truncated_normal: the mean (Keras' default 0)."""
    stddev: float | None = Field(None, gt=0)
    """random_normal, truncated_normal: the standard deviation (Keras' default 0.05)."""
    minval: float | None = None
    """random_uniform: the lower bound (Keras' default -0.05)."""
    maxval: float | None = None
    """random_uniform: the upper bound (Keras' default 0.05)."""
    value: float | None = None
    """constant: the value (Keras' default 0)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _arguments_fit(self) -> Initializer:
        takes = {"random_normal": {"mean", "stddev"}, "truncated_normal": {"mean", "stddev"},
                 "random_uniform": {"minval", "maxval"}, "constant": {"value"}}
        given = {k for k in ("mean", "stddev", "minval", "maxval", "value")
                 if getattr(self, k) is not None}
        extra = given - takes.get(self.name, set())
        if extra:
            raise ValueError(f"{self.name} takes no {', '.join(sorted(extra))}")
        return self

    def keras_config(self) -> dict:
        """{"class_name": ..., "config": {...}} as keras.initializers.get reads it."""
        args = {k: getattr(self, k) for k in ("mean", "stddev", "minval", "maxval", "value")
                if getattr(self, k) is not None}
        if self.name == "constant":  # Keras' Constant.from_config needs it (KeyError)
            args.setdefault("value", 0.0)
        class_name = "".join(part.capitalize() for part in self.name.split("_"))
        class_name = {"GlorotUniform": "GlorotUniform", "HeNormal": "HeNormal"}.get(
            class_name, class_name)
        return {"class_name": class_name, "config": args}


def _bare_name(value: Initializer | str) -> Initializer | str:
    """{name: he_normal} without arguments is he_normal: one spelling per initializer, so
    that one run is one config hash (a sweep skips it when done) and one compare group."""
    if isinstance(value, Initializer) and value.model_fields_set <= {"name"}:
        return value.name
    return value


# a bare name stays a name; any other string is an error
InitArg = Annotated[Initializer | INIT_NAMES, AfterValidator(_bare_name)]


class _Layer(Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=60)
    """The layer's name (default: its kind and position, e.g. conv1, conv1_bn)."""


class _Weighted(_Layer):
    """The settings a layer with a kernel and a bias shares (conv and dense)."""

    use_bias: bool = True
    """Keras' default true; before BN a bias is wasted (BN's beta takes its role)."""
    activation: ACTIVATIONS | None = None
    """An activation applied inside the layer (null = linear); on the last layer it decides
    whether the outputs are logits (null) or probabilities (softmax): train.from_logits
    must agree."""
    kernel_initializer: InitArg = "glorot_uniform"
    """The kernel's initializer (an initializer, see below)."""
    bias_initializer: InitArg = "zeros"
    """The bias' initializer."""


class Conv(_Weighted):
    """A 2-D convolution (Keras Conv2D)."""

    type: Literal["conv"]
    filters: int = Field(gt=0, le=4096)
    """Output channels."""
    kernel_size: int = Field(gt=0, le=64)
    """Square kernel side."""
    strides: int = Field(1, gt=0, le=64)
    """Step between kernel positions."""
    padding: Literal["valid", "same"] = "valid"
    """valid: no padding (the image shrinks by kernel_size - 1); same: zero padding."""


class Dense(_Weighted):
    """A fully connected layer (Keras Dense); the last layer gives the outputs."""

    type: Literal["dense"]
    units: int = Field(gt=0, le=65536)
    """Output width; the last layer's is the number of classes (10)."""


class BN(_Layer):
    """Batch normalization; a setting left out (null) comes from `model.bn`."""

    type: Literal["bn"]
    impl: Literal["keras", "scratch"] | None = None
    """As model.bn.impl, for this layer."""
    momentum: float | None = Field(None, ge=0.0, lt=1.0)
    """As model.bn.momentum (Keras' own default is 0.99)."""
    epsilon: float | None = Field(None, gt=0.0, le=1.0)
    """As model.bn.epsilon (Keras' own default is 1e-3)."""
    center: bool | None = None
    """As model.bn.center."""
    scale: bool | None = None
    """As model.bn.scale."""
    gamma_initializer: InitArg | None = None
    """As model.bn.gamma_initializer."""
    beta_initializer: InitArg | None = None
    """As model.bn.beta_initializer."""
    moving_mean_initializer: InitArg | None = None
    """As model.bn.moving_mean_initializer."""
    moving_variance_initializer: InitArg | None = None
    """As model.bn.moving_variance_initializer."""
    behaviour: BEHAVIOURS | None = None
    """As model.bn.behaviour."""
    fault: FAULTS | None = None
    """As model.bn.fault."""


class Activation(_Layer):
    """An activation as a layer of its own (Keras Activation)."""

    type: Literal["activation"]
    activation: ACTIVATIONS
    """The function."""


class Pool(_Layer):
    """2-D max or average pooling; strides default to the pool size."""

    type: Literal["max_pool", "avg_pool"]
    pool_size: int = Field(2, gt=0, le=64)
    """Square window side."""
    strides: int | None = Field(None, gt=0, le=64)
    """Step between windows. null = pool_size."""
    padding: Literal["valid", "same"] = "valid"
    """As for conv."""


class Flatten(_Layer):
    """Flattens an image to a vector (Keras Flatten)."""

    type: Literal["flatten"]
    """The layer kind."""


LayerSpec = Annotated[Conv | Dense | BN | Activation | Pool | Flatten,
                      Field(discriminator="type")]


def shapes(layers: list, input_shape: tuple[int, ...], where=None) -> list[tuple[int, ...]]:
    """Each layer's output shape (without the batch), from input_shape (H, W, C); ValueError
    naming the layer (where(i, layer): how to name it) that cannot be built on its input."""
    shape, out = tuple(input_shape), []
    where = where or (lambda i, layer: f"model.layers[{i}] ({layer.type})")
    for i, layer in enumerate(layers):
        here = where(i, layer)
        shape = _next_shape(layer, shape, here)
        if 0 in shape or any(d < 0 for d in shape):
            raise ValueError(f"{here}: output shape {shape} is empty: its input is too "
                             "small for it")
        out.append(shape)
    return out


def _next_shape(layer, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if layer.type in ("conv", "max_pool", "avg_pool"):
        if len(shape) != 3:
            raise ValueError(f"{where}: needs an image (H, W, C), gets shape {shape}: "
                             "put it before flatten")
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
    return shape


def _spatial(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0
