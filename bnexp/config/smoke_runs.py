"""--smoke: a config cut to a few batches of one epoch (for CI), each grid cell on its
first seed. A smoke run checks that a config trains at all, not what it learns.
"""

from __future__ import annotations

import dataclasses

from bnexp.config.schema import DEFAULT_CPU_REPLICAS, Config, RunSpec, input_shape

SMOKE_PIXELS = 256 * 28 * 28  # a smoke batch's input pixels at most: d2l's batch of 256


def smoke(config: Config) -> Config:
    """The same config cut to a few batches of one epoch, for CI smoke runs: three
    training batches, one of validation and of test. A batch of large images is cut too,
    to at most SMOKE_PIXELS input pixels (at least one image, and one per replica): one
    step of notebook 001's batch of 128 images of 224x224 takes 2.6 s on a laptop CPU."""
    batch = smoke_batch_size(config)
    data = config.data.model_copy(
        update={
            "batch_size": batch,
            "limit": min(config.data.limit or 3 * batch, 3 * batch),
            "validation_size": min(config.data.validation_size, batch),
            "test_limit": min(config.data.test_limit or batch, batch),
        }
    )
    train = config.train.model_copy(update={"epochs": 1})
    return config.model_copy(update={"data": data, "train": train})


def smoke_batch_size(config: Config) -> int:
    """The config's batch size, cut to SMOKE_PIXELS input pixels (positions: 28x28, 32x32
    for cifar10, or data.pad_to / data.resize_to on a side) but never below the replicas'
    count."""
    side = input_shape(config.data)[0]
    replicas = 1
    if config.train.strategy == "mirrored":
        replicas = config.train.replicas or DEFAULT_CPU_REPLICAS
    fits = max(1, SMOKE_PIXELS // (side * side), replicas)
    return min(config.data.batch_size, fits)


def smoke_specs(specs: list[RunSpec]) -> list[RunSpec]:
    """--smoke: every grid cell on its first seed, each cut to a few batches of one epoch."""
    first_seed = specs[0].config.seed
    return [dataclasses.replace(s, config=smoke(s.config)) for s in specs
            if s.config.seed == first_seed]
