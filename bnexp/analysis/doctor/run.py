"""What `bnexp doctor` reads of one run (a CheckedRun: its record, its epoch rows and its
model's layers, expanded from its config as bnexp builds them), and what it reports:
Findings.

It reads what a run folder already holds, through bnexp.runs: summary.json (status,
config, data sizes, where it diverged), metrics.csv (the last epoch's accuracies, with
and without batch statistics) and activations.csv where it was recorded. No TensorFlow.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

from bnexp import config as config_mod
from bnexp.config.network import leaf_shapes
from bnexp.config.presets import model_layers
from bnexp.config.schema import input_shape
from bnexp.errors import BadInput
from bnexp.runs import RunRecord

SEVERITIES = ("error", "warning", "info")  # most serious first


@dataclass
class Finding:
    """One problem in one run: its id, how serious, the run's numbers, and the fix."""

    run: str  # the run folder
    id: str
    severity: str  # error, warning or info
    evidence: str
    advice: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckedRun(RunRecord):
    """One run as the checks read it: its record (summary.json, the status that counts,
    the config: {} where none was recorded), its epoch rows (metrics.csv) and, from its
    config, its model's layers."""

    rows: list[dict] = field(default_factory=list)

    def get(self, dotted: str, default=None):
        """A config value by dotted key, e.g. "model.bn.momentum"; default if absent."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return default if node is None else node

    @property
    def layer_list(self) -> bool:
        return self.get("model.arch", "lenet") == "layers"

    @functools.cached_property  # checks ask for it several times; validating costs ~1 ms
    def layers(self) -> list[dict]:
        """The model's layers as dicts (type, name, ...), BN settings filled in from
        model.bn: exactly the layers bnexp built (config.model_layers), residual blocks'
        inner and shortcut layers in their place (the blocks themselves left out), each
        with the shape it takes (`input_shape`, no batch axis). A config today's
        schema cannot read, or no recorded config at all, gives no layers (the BN checks
        are then skipped: an empty config would read as the default model)."""
        if not self.config:
            return []
        try:
            config = config_mod.validate(self.config, str(self.path))
        except BadInput:
            return []
        built = leaf_shapes(model_layers(config.model), input_shape(config.data))
        return [{**layer.model_dump(), "input_shape": list(shape)} for layer, shape, _ in built]

    @property
    def bn_layers(self) -> list[dict]:
        return [layer for layer in self.layers if layer.get("type") == "bn"]

    def last(self, key: str) -> float | None:
        """The last epoch's value of a metrics.csv column; None where not recorded."""
        row = self.rows[-1] if self.rows else (self.summary.get("final") or {})
        return number(row.get(key))

    @property
    def epochs_done(self) -> int:
        done = self.summary.get("epochs_done")
        return done if isinstance(done, int) else len(self.rows)

    @property
    def steps_trained(self) -> int | None:
        """Training steps so far: epochs x ceil(train examples / batch); None if unknown."""
        train = (self.summary.get("data") or {}).get("train")
        batch = self.get("data.batch_size")
        if not isinstance(train, int) or not isinstance(batch, int) or batch <= 0:
            return None
        return self.epochs_done * math.ceil(train / batch)


def number(value) -> float | None:
    """A finite float, or None (blank cells, NaN, text)."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
