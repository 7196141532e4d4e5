"""The config schema as a whole: Config (its name, its seed and its sections, and the rules
across sections), RunSpec (one run of an expanded config), and what follows from them.

Every key of each section, its default, range and meaning: bnexp.config.sections.
No TensorFlow here: `bnexp validate` runs on these modules alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from bnexp.config.sections import (
    MAX_SEED,
    DataConfig,
    DiagnosticsConfig,
    ModelConfig,
    OptimizerConfig,
    Section,
    SweepConfig,
    TrainConfig,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
DEFAULT_CPU_REPLICAS = 2  # train.strategy: mirrored without GPUs


class Config(Section):
    """One experiment. `sweep`, when present, expands it into several runs."""

    name: str = Field("bnexp", pattern=NAME_PATTERN, max_length=80)
    """Label in the run id (letters, digits, . _ -). Defaults to the config file's stem."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seeds weights, data order and dropout: keras.utils.set_random_seed(seed)."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    sweep: SweepConfig | None = None
    """Several runs of this config: a grid of keys, arms (cells) and seeds. null = one run."""

    @model_validator(mode="after")
    def _a_slice_per_replica(self) -> Config:
        replicas = self.train.replicas or DEFAULT_CPU_REPLICAS
        if self.train.strategy == "mirrored" and self.data.batch_size < replicas:
            raise ValueError(f"data.batch_size: {self.data.batch_size} is fewer examples than "
                             f"train.replicas ({replicas}) need, one each")
        return self

    @model_validator(mode="after")
    def _probes_on_one_device(self) -> Config:
        d = self.diagnostics
        for key in ("grad_norms", "predictiveness"):
            if getattr(d, key) and self.train.strategy == "mirrored":
                raise ValueError(f"diagnostics.{key}: measured on one device; train.strategy "
                                 "mirrored spreads the model over several (use none)")
        return self


@dataclass(frozen=True)
class RunSpec:
    """One run of an expanded config: the resolved config, the sweep cell it came from,
    the --set overrides that made it (both show in its folder name), the config file it
    came from (what an error about its data or model names: one `bnexp train` may take
    several files), and its arm of sweep.cells.

    `cell` is what summary.json records as the run's cell: its arm's entries (`label`
    first, then the keys the arm sets) and its grid values; `arm` the arm's entries alone
    ({} without sweep.cells, where `cell` is the grid's values as it always was)."""

    config: Config
    cell: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str = "config"
    arm: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Readable run-id stem: name, the arm's label, the overrides' and the grid's
        values, the seed. An arm's keys show only as its label, and an override an arm
        sets anew not at all (the arm's value is the one the run has)."""
        parts = [self.config.name, *([_slug(self.arm["label"])] if self.arm else [])]
        settings = {**{k: v for k, v in self.overrides.items() if k != "seed"}, **self.cell}
        parts += [f"{key.rsplit('.', 1)[-1]}={_slug(v)}" for key, v in settings.items()
                  if key not in self.arm]
        return fitted("_".join(parts), f"_s{self.config.seed}")


LABEL_MAX = 200  # characters of a run folder's name before its time stamp
LABEL_HASH = 10  # hex digits of the hash that stands for what does not fit
LABEL_KEEP = LABEL_MAX - len(f"_s{MAX_SEED}") - 1 - LABEL_HASH  # a cut head's characters


def fitted(head: str, tail: str) -> str:
    """head + tail in at most LABEL_MAX characters, the tail (the seed) always whole:
    where it does not fit, head from its LABEL_KEEP-th character on is replaced by "+"
    and a short hash of that part ("+" is in no name nor slug, so it marks the cut). The
    cut is where the longest seed leaves room, so every seed of a cell shows the same
    hash. A label that fits is the same as ever: earlier runs keep their names."""
    if len(head) + len(tail) <= LABEL_MAX:
        return head + tail
    digest = hashlib.sha256(head[LABEL_KEEP:].encode()).hexdigest()[:LABEL_HASH]
    return f"{head[:LABEL_KEEP]}+{digest}{tail}"


def _slug(value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()  # as YAML writes it
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(value)).strip("-") or "x"


NATIVE_SHAPE = {"cifar10": (32, 3)}  # (side, channels) of a dataset's images; else 28x28 grey


def input_shape(cfg: DataConfig) -> tuple[int, int, int]:
    """The (H, W, C) of the images `cfg` yields: 28x28 grey (CIFAR-10: 32x32 colour), or
    pad_to x pad_to / resize_to x resize_to with the same channels."""
    side, channels = NATIVE_SHAPE.get(cfg.dataset, (28, 1))
    side = cfg.pad_to or cfg.resize_to or side
    return (side, side, channels)


def cpu_devices_needed(configs: list[Config]) -> int:
    """Logical CPU devices the mirrored runs among configs need without GPUs (0: none)."""
    return max((c.train.replicas or DEFAULT_CPU_REPLICAS for c in configs
                if c.train.strategy == "mirrored"), default=0)
