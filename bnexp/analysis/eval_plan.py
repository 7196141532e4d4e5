"""`bnexp eval` before TensorFlow starts: the options checked, the runs to evaluate found,
each run's test set read and shifted (NumPy), so that every mistake is one line of bad
input before the slow part (bnexp.analysis.evaluate) begins.

What a run is evaluated on: its own test set (as it trained: data.test_limit,
pad_to and resize_to applied), or every example of the --data folder's test files
(pad_to and resize_to applied, as to the run's own), then the shifts in the order given.

The trap: --stats adapt and batch need BN layers that keep moving statistics. A model
of group, layer or instance normalization (or none) normalizes alike in training and
inference: nothing to adapt, and batch statistics change nothing. Such a run is refused
(in a folder of runs, skipped with a warning), read from its config, not its model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp import runs, shifts
from bnexp.config import Config, network
from bnexp.errors import BadInput
from bnexp.runs import checkpoint, evals

MAX_LINES = 20  # refusals listed when no run is left to evaluate


@dataclass
class Request:
    """What to evaluate on: shifts (in order), the --data folder's test set (x, y raw) or
    None for each run's own, the statistics, and --batch-size (None: each run's own)."""

    shifts: list[shifts.Shift]
    stats: str = "population"
    batch_size: int | None = None
    data: Path | None = None
    test: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, shift, data: Path | None, stats: str, batch_size: int | None) -> Request:
        """The options checked (BadInput naming the one at fault) and --data read."""
        if stats not in evals.STATS:
            raise BadInput(f"--stats {stats}: expected {', '.join(evals.STATS)}")
        if batch_size is not None and (type(batch_size) is not int or batch_size < 1):
            raise BadInput(f"--batch-size {batch_size}: a whole number of at least 1")
        if batch_size is not None and stats != "batch":
            raise BadInput(f"--batch-size {batch_size}: only with --stats batch (population "
                           "and adapt statistics do not depend on a batch size)")
        test = read_test_files(Path(data)) if data is not None else None
        return cls(shifts.parse_all(shift), stats, batch_size, data, test)

    @property
    def data_label(self) -> str:
        """eval.csv's data column: test (the run's own test set) or --data's full path."""
        return evals.OWN_TEST if self.data is None else str(self.data.resolve())


@dataclass
class Target:
    """One run to evaluate: its folder, status and config, and the test set it gets."""

    folder: Path
    status: str
    config: Config
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)

    def batch_size(self, request: Request) -> int | None:
        """--stats batch: examples per batch (--batch-size, else data.batch_size); else None."""
        if request.stats != "batch":
            return None
        return request.batch_size or self.config.data.batch_size


def plan(path: Path, request: Request) -> tuple[list[Target], list[str]]:
    """(the runs to evaluate, warnings): `path` itself where it is a run folder (any
    problem is BadInput), else every run beneath it that counts (as compare finds them)
    with a checkpoint (the others, and runs refused, are warnings; BadInput where none
    is left)."""
    path = Path(path)
    if (path / "summary.json").is_file():
        return [_target(path, _status(path), request, {})], []
    if not path.is_dir():
        raise BadInput(f"{path}: PATH: no such run folder or folder of runs")
    records, warnings = runs.scan_latest(path)
    targets, refused, loaded = [], [], {}
    for record in records:
        try:
            targets.append(_target(record.path, record.status, request, loaded))
        except BadInput as e:
            refused.append(str(e).split("\n")[0])
    if not targets:
        if not refused:
            raise BadInput(f"{path}: PATH: no run folder beneath it (a folder holding "
                           "summary.json and checkpoint.npz)")
        more = len(refused) - MAX_LINES
        raise BadInput(*refused[:MAX_LINES], *([f"... and {more} more"] if more > 0 else []))
    return targets, warnings + [f"skipped {line}" for line in refused]


def _status(folder: Path) -> str:
    try:
        return runs.read_record(folder).status
    except ValueError as e:
        raise BadInput(f"{folder}: not a readable run folder: {e}") from None


def _target(folder: Path, status: str, request: Request, loaded: dict) -> Target:
    """The run in folder as a Target with its (shifted) test set; BadInput naming the
    folder where it has no checkpoint, a config that does not load, or does not fit the
    request (no BN to adapt, --data of another shape)."""
    if not (folder / checkpoint.FILENAME).is_file():
        raise BadInput(f"{folder}: no {checkpoint.FILENAME}: the run finished no epoch, "
                       "so there is nothing to evaluate")
    evals.check(folder)  # a damaged eval.csv: before anything is measured
    (spec,) = config_mod.load(folder / "config.yaml")
    check_stats(folder, spec.config, request.stats)
    x, y = _test_set(folder, spec.config, request, loaded)
    return Target(folder, status, spec.config, x, y)


def has_moving_statistics(config: Config) -> bool:
    """Whether the model has a BN layer (batch or renorm), the only normalization that
    keeps moving statistics."""
    layers = network.leaves(config_mod.model_layers(config.model))
    return any(layer.type == "bn" for layer in layers)


def check_stats(folder: Path, config: Config, stats: str) -> None:
    if stats == "population" or has_moving_statistics(config):
        return
    kinds = sorted({layer.type for layer in network.leaves(config_mod.model_layers(
        config.model)) if layer.type.endswith("_norm")}) or ["none"]
    what = ("there is nothing to adapt" if stats == "adapt"
            else "batch statistics would change nothing")
    raise BadInput(f"{folder}: --stats {stats}: the model has no BN layer keeping moving "
                   f"statistics (normalization: {', '.join(kinds)}), so {what}; use "
                   "--stats population")


def _test_set(folder: Path, config: Config, request: Request, loaded: dict):
    """(x, y) the run is evaluated on, shifted; one array for runs alike (`loaded`, keyed
    by the data config)."""
    cfg = config.data
    key = cfg.model_dump_json()
    if key not in loaded:
        if request.test is None:
            splits = data_mod.load(cfg, str(folder / "config.yaml"))
            x, y = splits.x_test, splits.y_test
        else:
            x = data_mod._images(request.test[0], cfg.pad_to, cfg.resize_to)
            y = np.asarray(request.test[1], dtype=np.int32)
        loaded[key] = (shifts.apply_all(request.shifts, x), y)
    x, y = loaded[key]
    want = config_mod.input_shape(cfg)
    if tuple(x.shape[1:]) != tuple(want):
        raise BadInput(f"{request.data}: --data: its test images are "
                       f"{'x'.join(map(str, x.shape[1:]))}, the run {folder.name} takes "
                       f"{'x'.join(map(str, want))} (height x width x channels)")
    return x, y


def read_test_files(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels of an IDX folder (t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte, each gzipped or not; training files not needed; images
    (N, H, W) grey or (N, H, W, C)), checked as bnexp's loader checks a dataset;
    BadInput naming --data otherwise."""
    if not folder.is_dir():
        raise BadInput(f"{folder}: --data: no such folder (a folder of IDX files)")
    images, labels = (data_mod._idx_path(folder, data_mod.IDX_FILES[k])
                      for k in ("test_images", "test_labels"))
    if images is None or labels is None:
        raise BadInput(f"{folder}: --data: no {data_mod.IDX_FILES['test_images']}[.gz] and "
                       f"{data_mod.IDX_FILES['test_labels']}[.gz] (IDX files, as MNIST's)")
    x = data_mod.read_idx(images, data_mod.IDX_IMAGES)
    y = data_mod.read_idx(labels, data_mod.IDX_LABELS)
    channels = x.shape[3] if x.ndim == 4 else 1  # (N, H, W, 3): colour, as CIFAR-10's
    data_mod.check_arrays(x, y, x, y, f"{folder}: --data", channels)
    return x, y


def shown(rows: list[dict]):
    """bnexp eval's table: a row per run evaluated, the run's folder name first, its path
    and the time left out (they are in eval.csv)."""
    import pandas as pd

    columns = ["run_id", *(c for c in evals.COLUMNS if c != "evaluated_at")]
    return pd.DataFrame([{c: row[c] for c in columns} for row in rows], columns=columns,
                        dtype=object)
