"""A run's state after its last finished epoch, in one file replaced atomically.

checkpoint.npz holds every model weight (BN moving statistics included), every
optimizer variable (iteration count, momenta), the data-order RNG state, and the
metric rows of the finished epochs. It is written to a temp file, fsynced and
renamed over the old one, so a kill at any instant leaves the previous or the new
checkpoint whole. It is written before the epoch's row goes to metrics.csv: on
resume the checkpoint is the truth and metrics.csv is made to agree with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bnexp.runs import replace_atomically

FILENAME = "checkpoint.npz"


def save(path: Path, model, optimizer, order: np.random.Generator, rows: list[dict]) -> None:
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    for i, variable in enumerate(optimizer.variables):
        arrays[f"optimizer_{i}"] = np.asarray(variable.numpy())
    meta = {"rows": rows, "order": order.bit_generator.state,
            "n_model": len(model.weights), "n_optimizer": len(optimizer.variables)}
    arrays["meta"] = np.array(json.dumps(meta))
    replace_atomically(path, lambda f: np.savez(f, **arrays))


def rows(path: Path) -> list[dict]:
    """The metric rows a checkpoint holds (its finished epochs), without restoring anything."""
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["meta"]))["rows"]


def restore(path: Path, model, optimizer, order: np.random.Generator) -> list[dict]:
    """Put the saved state into model, optimizer and order; return the finished epochs' rows."""
    optimizer.build(model.trainable_variables)  # Keras creates optimizer variables lazily
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if (meta["n_model"], meta["n_optimizer"]) != (len(model.weights),
                                                      len(optimizer.variables)):
            raise ValueError(f"{path}: checkpoint does not fit this model and optimizer")
        for i, variable in enumerate(model.weights):
            variable.assign(f[f"model_{i}"])
        for i, variable in enumerate(optimizer.variables):
            variable.assign(f[f"optimizer_{i}"])
    order.bit_generator.state = meta["order"]
    return meta["rows"]


def load_weights(path: Path, model) -> None:
    """Put the saved model weights (moving statistics included) into model; no optimizer."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if meta["n_model"] != len(model.weights):
            raise ValueError(f"{path}: checkpoint does not fit this model")
        for i, variable in enumerate(model.weights):
            variable.assign(f[f"model_{i}"])
