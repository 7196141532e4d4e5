"""optimizer.schedule: the learning rate over training, as the config states it (the
schedule itself, in TensorFlow ops: bnexp.training.objective.Schedule). No TensorFlow
here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bnexp.config.layers import Strict


class ScheduleConfig(Strict):
    """The learning rate over training, step by step (the optimizer's iteration count
    drives it, so a resumed run continues it exactly): constant, step or cosine, after an
    optional linear warmup. An epoch is as many steps as the training set has batches."""

    name: Literal["constant", "step", "cosine"] = "constant"
    """constant: learning_rate throughout. step: learning_rate times factor^k, k the
    boundaries (or multiples of `every`) passed. cosine: from learning_rate down to
    final_fraction * learning_rate along half a cosine over the steps after the warmup:
    step s of T (from 0) uses final + (1 - final) * (1 + cos(pi * (s - W) / (T - W))) / 2
    of learning_rate (W warmup steps), reaching final_fraction after the last step."""
    warmup_epochs: int = Field(0, ge=0, le=100_000)
    """Linear warmup over the first k epochs: warmup step s (from 0) of W uses (s + 1) / W
    of the rate the schedule gives there, so it rises from learning_rate / W to the full
    rate at step W - 1. 0 = none."""
    warmup_steps: int = Field(0, ge=0, le=10**9)
    """The warmup in steps instead of epochs (one of the two). 0 = none."""
    unit: Literal["epochs", "steps"] = "epochs"
    """step: what boundaries and every count."""
    boundaries: list[Annotated[int, Field(gt=0, le=10**9)]] | None = Field(
        None, min_length=1, max_length=1000)
    """step: the epochs (or steps) after which the rate is multiplied by factor, in
    increasing order, e.g. [30, 60]; counted from the start of the run, warmup included."""
    every: int | None = Field(None, gt=0, le=10**9)
    """step: multiply the rate by factor every N epochs (or steps), instead of boundaries."""
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    """step: the multiplier at each boundary."""
    final_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    """cosine: the rate the run ends at, as a fraction of learning_rate."""

    @model_validator(mode="after")
    def _one_spelling(self) -> ScheduleConfig:
        """A key set (not at its default) for a schedule it does not apply to is an
        error, so that one schedule has one resolved config."""
        if self.warmup_epochs and self.warmup_steps:
            raise ValueError("warmup_epochs and warmup_steps exclude each other")
        keys = (("unit", "epochs", "step"), ("boundaries", None, "step"),
                ("every", None, "step"), ("factor", 0.1, "step"),
                ("final_fraction", 0.0, "cosine"))
        for key, default, name in keys:
            if self.name != name and getattr(self, key) != default:
                raise ValueError(f"{key} applies to name: {name} only, not {self.name}")
        if self.name == "step" and (self.boundaries is None) == (self.every is None):
            raise ValueError("name: step takes boundaries or every (one of the two)")
        if self.boundaries and sorted(set(self.boundaries)) != self.boundaries:
            raise ValueError("boundaries must increase")
        return self
