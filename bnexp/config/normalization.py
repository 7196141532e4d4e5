"""model.bn and model.dropout: which normalization the presets place, where, and how it
behaves (batch norm's moving statistics, renorm's corrections, group norm's groups), and
the rules that give one run one resolved config. No TensorFlow here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, model_validator

from bnexp.config.base import MAX_EXAMPLES, MAX_WIDTH, Section
from bnexp.config.layers import BEHAVIOURS, FAULTS, InitArg, RenormClipping, RenormRamp

# what model.bn's null initializers mean (the BN layers' own defaults, Keras' and scratch's)
BN_INIT_DEFAULTS = {"gamma_initializer": "ones", "beta_initializer": "zeros",
                    "moving_mean_initializer": "zeros", "moving_variance_initializer": "ones"}


NORM_KINDS = Literal["batch", "renorm", "group", "layer", "instance"]
# BNConfig's keys that only batch norm (and renorm) reads, with their defaults
BATCH_ONLY = {"momentum": 0.9, "moving_mean_initializer": None,
              "moving_variance_initializer": None, "behaviour": "standard", "fault": None,
              "synchronized": False, "virtual_batch_size": None}
RENORM_ONLY = {"renorm_clipping": None, "renorm_momentum": 0.99, "renorm_ramp": None}


class BNConfig(Section):
    """Where normalization goes, which one, and how it behaves."""

    placement: Literal["none", "before", "after"] = "before"
    """BN before the activation (Ioffe & Szegedy, d2l), after it, or none at all."""
    kind: NORM_KINDS = "batch"
    """The normalization the presets place (and a layer list's `bn` layers become): batch
    (Ioffe & Szegedy), renorm (batch renormalization, Ioffe 2017), group (Wu & He 2018),
    layer (group norm with one group: over all of an example's features, gamma and beta
    per channel) or instance (one channel per group; convolutions only). Only batch and
    renorm have moving statistics, so only they read momentum, behaviour and the rest."""
    groups: int | None = Field(None, gt=0, le=MAX_WIDTH)
    """kind: group: groups per layer (must divide every normalized layer's channels).
    null: per layer, the largest divisor of its channels up to min(32, channels / 2)."""
    renorm: StrictBool | None = None
    """true: the same as kind: renorm (stored as kind: renorm: one run, one spelling)."""
    renorm_clipping: RenormClipping | None = None
    """kind: renorm: the limits on r and d, e.g. {rmax: 3, rmin: 0.333, dmax: 5}. null:
    no clipping (Keras' default)."""
    renorm_momentum: float = Field(0.99, ge=0.0, lt=1.0)
    """kind: renorm: the momentum of the statistics r and d are computed from (Keras'
    renorm_momentum); `momentum` still moves the inference statistics."""
    renorm_ramp: RenormRamp | None = None
    """kind: renorm, impl: scratch: raise the clipping limits from rmax 1 and dmax 0 over
    training, as Ioffe 2017 does (see below). null: the limits hold from the start."""
    layers: Literal["all", "conv", "dense"] = "all"
    """Which hidden layers get BN: all, only LeNet's convolutions, or only the dense layers."""
    input: bool = False
    """BN on the input itself (Geron's MLP): on the flattened pixels (MLP), per channel (LeNet)."""
    impl: Literal["keras", "scratch"] = "keras"
    """keras: keras.layers.BatchNormalization; scratch: bnexp's own layer (bnexp/model/bn.py)."""
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    """moving = momentum * moving + (1 - momentum) * batch. Keras' default 0.99 needs hundreds
    of steps to converge: short runs then show a large train/inference gap."""
    epsilon: float = Field(1.0e-5, gt=0.0, le=1.0)
    """Added to the variance before the square root."""
    center: bool = True
    """Learn the shift beta."""
    scale: bool = True
    """Learn the scale gamma."""
    synchronized: bool = False
    """With several replicas (train.strategy: mirrored): true normalizes with the global
    batch's statistics (all-reduced), false with each replica's slice (ghost batches)."""
    virtual_batch_size: int | None = Field(None, gt=0, le=MAX_EXAMPLES)
    """Ghost BN on one device (scratch impl): normalize each run of N examples of a batch
    by its own statistics, as unsynchronized BN on batch/N replicas. null = off."""
    gamma_initializer: InitArg | None = None
    """gamma's initializer, e.g. ones or {name: random_normal, stddev: 0.01}. null = ones."""
    beta_initializer: InitArg | None = None
    """beta's initializer. null = zeros."""
    moving_mean_initializer: InitArg | None = None
    """The moving mean's initial value. null = zeros."""
    moving_variance_initializer: InitArg | None = None
    """The moving variance's initial value. null = ones (notebook 004 starts it at zeros)."""
    behaviour: BEHAVIOURS = "standard"
    """standard: batch statistics in training (moving ones updated), moving statistics at
    inference. moving_stats_in_training: normalize with the moving statistics in training
    too (they still move toward the batch's; d2l's exercise). batch_stats_at_inference:
    inference normalizes with the batch's own statistics, so a prediction depends on the
    rest of its batch (a custom layer called with training=True). frozen_moving_stats: the
    moving statistics never move from their initial values."""
    fault: FAULTS | None = None
    """A known broken implementation, reproduced on purpose (impl: scratch), never a default.
    mxnet_moving_average: notebook 004's update as written, moving_mean <- moving_mean +
    momentum - momentum * batch variance, moving variance never updated."""

    @model_validator(mode="after")
    def _null_for_the_default(self) -> BNConfig:
        """An initializer that names its default (gamma_initializer: ones) is stored as null:
        one run, one config hash and one compare group, however it was spelled."""
        for key, default in BN_INIT_DEFAULTS.items():
            if getattr(self, key) == default:
                setattr(self, key, None)
        return self

    @model_validator(mode="after")
    def _one_spelling(self) -> BNConfig:
        """renorm: true is kind: renorm; a setting of one kind given with another is an
        error, so that one run has one resolved config (a default value is not set)."""
        if self.renorm is not None:
            if self.renorm != (self.kind == "renorm") and self.kind != "batch":
                raise ValueError(f"renorm: {str(self.renorm).lower()} contradicts kind: "
                                 f"{self.kind}")
            self.kind = "renorm" if self.renorm else self.kind
            self.renorm = None
        for key, default, kinds, why in (
                *((k, d, ("batch", "renorm"), "it has no moving statistics")
                  for k, d in BATCH_ONLY.items()),
                *((k, d, ("renorm",), "it is batch renorm's") for k, d in RENORM_ONLY.items()),
                ("groups", None, ("group",), "it is group norm's")):
            if self.kind not in kinds and getattr(self, key) != default:
                raise ValueError(f"{key} does not apply to kind: {self.kind} ({why})")
        return self

    @model_validator(mode="after")
    def _renorm_fits(self) -> BNConfig:
        if self.kind != "renorm":
            return self
        if self.behaviour != "standard" or self.fault is not None:
            raise ValueError("kind: renorm works with behaviour: standard and no fault only")
        if self.virtual_batch_size is not None:
            raise ValueError("kind: renorm and virtual_batch_size exclude each other")
        check_ramp(self.renorm_ramp, self.renorm_clipping, self.impl)
        return self

    @model_validator(mode="after")
    def _ghost_needs_scratch(self) -> BNConfig:
        if self.virtual_batch_size is not None and self.impl != "scratch":
            raise ValueError("virtual_batch_size needs impl: scratch (Keras 3's "
                             "BatchNormalization has no ghost batches)")
        if self.virtual_batch_size is not None and self.synchronized:
            raise ValueError("virtual_batch_size and synchronized exclude each other")
        if self.fault is not None and self.impl != "scratch":
            raise ValueError(f"fault {self.fault} needs impl: scratch (Keras' layer has no "
                             "faults)")
        return self


def check_ramp(ramp: RenormRamp | None, clipping: RenormClipping | None, impl) -> None:
    """ValueError unless a renorm ramp has an rmax and a dmax to rise to, on scratch."""
    if ramp is None:
        return
    if impl != "scratch":
        raise ValueError("renorm_ramp needs impl: scratch (Keras' limits are fixed)")
    if clipping is None or clipping.rmax is None or clipping.dmax is None:
        raise ValueError("renorm_ramp needs renorm_clipping's rmax and dmax (what the "
                         "limits rise to)")


class DropoutConfig(Section):
    """Dropout in the presets' hidden blocks (Li et al. 2019's placements)."""

    rate: float = Field(gt=0.0, lt=1.0)
    """The probability of dropping a value."""
    placement: Literal["before_bn", "after_bn"] = "after_bn"
    """before_bn: after every hidden block's activation, so each feeds the next block and
    its normalization (Li et al.'s variance shift: the moving variance is learnt with
    dropout on and used with it off). after_bn: once, after the last hidden block, just
    before the output layer: no normalization follows it (Li et al.'s remedy)."""
