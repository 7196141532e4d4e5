"""A run's state after its last finished epoch, in one file replaced atomically.

checkpoint.npz holds every model weight (BN moving statistics included) under its layer's
name, `model/<layer>/<weight>` as `bnexp summary` names them (e.g. `model/conv1_bn/gamma`;
older checkpoints: `model_<i>` in model.weights' order, still read), the state of
every dropout and noise layer's random draws, every optimizer variable (iteration count,
momenta), the data-order RNG state, and the
metric rows of the finished epochs. It is written to a temp file, fsynced and
renamed over the old one, so a kill at any instant leaves the previous or the new
checkpoint whole. It is written before the epoch's row goes to metrics.csv: on
resume the checkpoint is the truth and metrics.csv is made to agree with it.

A checkpoint bnexp did not write whole (damaged, copied in part, edited) is read whole
and checked before a resume writes anything: CheckpointError, one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bnexp.errors import BadInput
from bnexp.runs.atomic import replace_atomically
from bnexp.safeopen import open_for_reading

FILENAME = "checkpoint.npz"


def save(path: Path, model, optimizer, order: np.random.Generator, rows: list[dict]) -> None:
    names = model_names(model)
    arrays = {f"model/{name}": np.asarray(v.numpy()) for name, v in zip(names, model.weights,
                                                                        strict=True)}
    for i, variable in enumerate(optimizer.variables):
        arrays[f"optimizer_{i}"] = np.asarray(variable.numpy())
    for i, variable in enumerate(random_states(model)):
        arrays[f"random_{i}"] = np.asarray(variable.numpy())
    meta = {"rows": rows, "order": order.bit_generator.state,
            "n_model": len(model.weights), "model_names": names,
            "n_optimizer": len(optimizer.variables),
            "n_random": len(random_states(model))}
    arrays["meta"] = np.array(json.dumps(meta))
    replace_atomically(path, lambda f: np.savez(f, **arrays))


def model_names(model) -> list[str]:
    """The names the model's weights are saved under (`layer/weight`); a model without
    layers (a test's stand-in) numbers them."""
    if not hasattr(model, "layers"):
        return [str(i) for i in range(len(model.weights))]
    from bnexp.model.residual import weight_names

    return weight_names(model)


def model_keys(meta: dict) -> list[str]:
    """The array names of the model's weights in model.weights' order: `model/<name>`,
    or `model_<i>` in a checkpoint written before weights were named."""
    if "model_names" in meta:
        return [f"model/{name}" for name in meta["model_names"]]
    return [f"model_{i}" for i in range(meta["n_model"])]


def random_states(model) -> list:
    """The model's variables that are no weights: the seed states of its dropout and noise
    layers (Keras SeedGenerators), which advance with every training step."""
    weights = {id(w) for w in model.weights}
    return [v for v in getattr(model, "variables", []) if id(v) not in weights]


class CheckpointError(BadInput):
    """checkpoint.npz is not a whole checkpoint bnexp wrote (damaged, replaced, not a file)."""


def read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a checkpoint, every array bnexp's meta says it holds checked to be
    there; CheckpointError naming the file otherwise. The trap: np.load reads lazily, so
    a damaged file would fail half way through a restore; it is read whole first."""
    try:
        with open_for_reading(path, regular=True) as file, np.load(file, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        meta = json.loads(str(arrays.pop("meta")))
        meta.setdefault("n_random", 0)  # checkpoints of bnexp before dropout
        counts = (meta["n_model"], meta["n_optimizer"], meta["n_random"])
        if not all(type(n) is int and 0 <= n <= len(arrays) for n in counts):
            raise ValueError("counts")
        names_ok = "model_names" not in meta or (
            isinstance(meta["model_names"], list) and len(meta["model_names"]) == meta["n_model"]
            and all(isinstance(n, str) for n in meta["model_names"]))
        if not names_ok:
            raise ValueError("names")
        names = model_keys(meta)
        names += [f"optimizer_{i}" for i in range(meta["n_optimizer"])]
        names += [f"random_{i}" for i in range(meta["n_random"])]
        if (set(names) - set(arrays) or not isinstance(meta["rows"], list)
                or not all(isinstance(row, dict) for row in meta["rows"])
                or not isinstance(meta["order"], dict)):
            raise ValueError("incomplete")
    except Exception as e:  # noqa: BLE001 - zip and npy decoders raise many kinds on damage
        # (BadZipFile, RuntimeError "encrypted", zlib.error, EOFError, ...): all mean the same
        raise CheckpointError(f"{path}: not a whole bnexp checkpoint ({type(e).__name__})"
                              ) from None
    return arrays, meta


def rows(path: Path) -> list[dict]:
    """The metric rows a checkpoint holds (its finished epochs), without restoring anything."""
    return read(path)[1]["rows"]


def restore(path: Path, model, optimizer, order: np.random.Generator) -> list[dict]:
    """Put the saved state into model, optimizer and order; return the finished epochs' rows."""
    optimizer.build(model.trainable_variables)  # Keras creates optimizer variables lazily
    arrays, meta = read(path)
    randoms = random_states(model)
    if (meta["n_model"], meta["n_optimizer"], meta["n_random"]) != (
            len(model.weights), len(optimizer.variables), len(randoms)):
        raise CheckpointError(f"{path}: checkpoint does not fit this model and optimizer")
    _assign(path, model.weights, arrays, model_keys(meta))
    _assign(path, randoms, arrays, _numbered("random", len(randoms)))
    _assign(path, optimizer.variables, arrays, _numbered("optimizer", len(optimizer.variables)))
    try:
        order.bit_generator.state = meta["order"]
    except (ValueError, TypeError, KeyError):
        raise CheckpointError(f"{path}: not a whole bnexp checkpoint (data order)") from None
    return meta["rows"]


def load_weights(path: Path, model) -> None:
    """Put the saved model weights (moving statistics included) into model; no optimizer."""
    arrays, meta = read(path)
    if meta["n_model"] != len(model.weights):
        raise CheckpointError(f"{path}: checkpoint does not fit this model")
    _assign(path, model.weights, arrays, model_keys(meta))


def model_weights(path: Path) -> dict[str, np.ndarray]:
    """A checkpoint's model weights by name (`layer/weight`; `model_<i>` -> `<i>` in an old
    one), in model.weights' order: what a tool reads without building the model."""
    arrays, meta = read(path)
    return {key.removeprefix("model/").removeprefix("model_"): arrays[key]
            for key in model_keys(meta)}


def _numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(n)]


def _assign(path: Path, variables, arrays: dict[str, np.ndarray], keys: list[str]) -> None:
    """Each variable its array, by position: every shape checked before any is assigned."""
    for key, variable in zip(keys, variables, strict=True):
        if tuple(arrays[key].shape) != tuple(variable.shape):
            raise CheckpointError(f"{path}: checkpoint does not fit this model ({key} "
                                  f"has shape {arrays[key].shape}, the model's "
                                  f"{variable.shape})")
    for key, variable in zip(keys, variables, strict=True):
        variable.assign(arrays[key])
