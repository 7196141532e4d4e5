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
                     "truncated_normal", "zeros", "ones", "constant", "variance_scaling"]
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


ARGUMENTS = ("mean", "stddev", "minval", "maxval", "value", "scale", "mode", "distribution")


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
    scale: float | None = Field(None, gt=0, le=1e6)
    """variance_scaling: the variance's factor (Keras' default 1; he_normal is 2)."""
    mode: Literal["fan_in", "fan_out", "fan_avg"] | None = None
    """variance_scaling: the fan the variance is divided by (Keras' default fan_in)."""
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] | None = None
    """variance_scaling: the draw (Keras' default truncated_normal)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _arguments_fit(self) -> Initializer:
        takes = {"random_normal": {"mean", "stddev"}, "truncated_normal": {"mean", "stddev"},
                 "random_uniform": {"minval", "maxval"}, "constant": {"value"},
                 "variance_scaling": {"scale", "mode", "distribution"}}
        given = {k for k in ARGUMENTS if getattr(self, k) is not None}
        extra = given - takes.get(self.name, set())
        if extra:
            raise ValueError(f"{self.name} takes no {', '.join(sorted(extra))}")
        return self

    def keras_config(self) -> dict:
        """{"class_name": ..., "config": {...}} as keras.initializers.get reads it."""
        args = {k: getattr(self, k) for k in ARGUMENTS if getattr(self, k) is not None}
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
    trainable: bool = True
    """false: the optimizer leaves the layer's weights at their initial values (as
    train.trainable does; BN still normalizes with batch statistics in training). A layer
    without trainable weights has nothing to freeze: false there is an error."""


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


class RenormClipping(Strict):
    """Batch renorm's limits on its corrections r (to [rmin, rmax]) and d (to [-dmax,
    dmax]); a limit left out (null) does not clip (Keras' renorm_clipping)."""

    rmax: float | None = Field(None, ge=1.0, le=1e6)
    """The largest r (Ioffe 2017 reaches 3)."""
    rmin: float | None = Field(None, gt=0.0, le=1.0)
    """The smallest r (usually 1 / rmax)."""
    dmax: float | None = Field(None, ge=0.0, le=1e6)
    """The largest |d| (Ioffe 2017 reaches 5)."""


class RenormRamp(Strict):
    """Ioffe 2017's schedule of the clipping limits (scratch impl): r clipped to exactly 1
    and d to 0 (plain BN) for `hold_steps` training steps, then rmax rising linearly to
    renorm_clipping.rmax at step `rmax_at` (rmin = 1 / the current rmax) and dmax to
    renorm_clipping.dmax at step `dmax_at`. The paper: 5,000, 40,000, 25,000."""

    hold_steps: int = Field(5000, ge=0, le=10**9)
    """Steps of plain BN (r = 1, d = 0) before the limits start to rise."""
    rmax_at: int = Field(40000, ge=0, le=10**9)
    """The step at which rmax reaches renorm_clipping.rmax."""
    dmax_at: int = Field(25000, ge=0, le=10**9)
    """The step at which dmax reaches renorm_clipping.dmax."""

    @model_validator(mode="after")
    def _after_hold(self) -> RenormRamp:
        if min(self.rmax_at, self.dmax_at) < self.hold_steps:
            raise ValueError("rmax_at and dmax_at must not come before hold_steps")
        return self


class _Norm(_Layer):
    """What every normalization layer shares; a setting left out (null) comes from
    `model.bn`."""

    impl: Literal["keras", "scratch"] | None = None
    """As model.bn.impl, for this layer."""
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


class BN(_Norm):
    """Batch normalization (with renorm: batch renormalization); a setting left out
    (null) comes from `model.bn`."""

    type: Literal["bn"]
    momentum: float | None = Field(None, ge=0.0, lt=1.0)
    """As model.bn.momentum (Keras' own default is 0.99)."""
    moving_mean_initializer: InitArg | None = None
    """As model.bn.moving_mean_initializer."""
    moving_variance_initializer: InitArg | None = None
    """As model.bn.moving_variance_initializer."""
    behaviour: BEHAVIOURS | None = None
    """As model.bn.behaviour."""
    fault: FAULTS | None = None
    """As model.bn.fault."""
    renorm: bool | None = None
    """Batch renormalization (Ioffe 2017). null: as model.bn (kind: renorm)."""
    renorm_clipping: RenormClipping | None = None
    """As model.bn.renorm_clipping."""
    renorm_momentum: float | None = Field(None, ge=0.0, lt=1.0)
    """As model.bn.renorm_momentum."""
    renorm_ramp: RenormRamp | None = None
    """As model.bn.renorm_ramp."""


class GroupNorm(_Norm):
    """Group normalization (Wu & He 2018): each example's channels in `groups` groups, each
    group normalized over its channels and positions; gamma and beta per channel. No
    moving statistics: training and inference compute the same thing."""

    type: Literal["group_norm"]
    groups: int | None = Field(None, gt=0, le=65536)
    """Groups; must divide the channels. null: model.bn.groups, or by default the largest
    divisor of the channels up to min(32, channels / 2) (never one channel per group)."""


class LayerNorm(_Norm):
    """Layer normalization as Wu & He define it: over all of an example's features (C, H, W
    for a convolution), with gamma and beta per channel: group norm with one group (not
    Keras' LayerNormalization, which normalizes the last axis only by default)."""

    type: Literal["layer_norm"]


class InstanceNorm(_Norm):
    """Instance normalization: group norm with one channel per group; convolutions only (on
    a dense layer's output it would give beta alone)."""

    type: Literal["instance_norm"]


NORM_TYPES = ("bn", "group_norm", "layer_norm", "instance_norm")


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


class Dropout(_Layer):
    """Dropout (Keras Dropout): in training steps each value is zeroed with probability
    `rate` and the rest scaled by 1 / (1 - rate); off in every evaluation."""

    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0)
    """The probability of dropping a value."""


class Noise(_Layer):
    """Injected noise (Santurkar et al. 2018's "noisy BN" when placed after BN): in
    training steps y = x * a + b with b ~ N(mean, stddev^2) and a ~ N(1, scale_stddev^2);
    off in every evaluation."""

    type: Literal["noise"]
    stddev: float = Field(ge=0.0, le=1e6)
    """The standard deviation of the additive noise b."""
    mean: float = Field(0.0, ge=-1e6, le=1e6)
    """The mean of b: non-zero shifts every value on average."""
    scale_stddev: float = Field(0.0, ge=0.0, le=1e6)
    """The standard deviation of the multiplicative noise a (mean 1); 0 = none."""
    resample: Literal["element", "step"] = "element"
    """element: a fresh draw for every value; step: one draw per unit (channel) per
    training step, shared by the whole batch, so the distribution of the layer's output
    shifts and scales anew at every step (Santurkar et al.'s time-varying noise)."""


def default_groups(channels: int) -> int:
    """Group norm's groups when none are given: the largest divisor of `channels` up to
    min(32, channels / 2), so never one channel per group (that is instance norm); 1
    for a single channel. LeNet's 6, 16, 120 and 84 channels: 3, 8, 30 and 28 groups."""
    limit = min(32, channels // 2)
    return max((d for d in range(1, limit + 1) if channels % d == 0), default=1)


def groups_for(layer, channels: int) -> int:
    """How many groups a group, layer or instance norm layer makes of `channels`."""
    if layer.type == "layer_norm":
        return 1
    if layer.type == "instance_norm":
        return channels
    return layer.groups or default_groups(channels)
