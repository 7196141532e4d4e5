"""sweep.cells: arms, several dotted keys set together under a label; and the cells of an
expanded sweep (its runs, seeds aside), which `bnexp summary --cell N` numbers.

An arm's keys are checked as grid keys are (a dotted key of the schema; not seed or
name; not a grid key too, which would set it twice). Its label names it in run folders
(RunSpec.label), in summary.json's cell and in compare's `label` column, so labels are
unique. Loading crosses the arms with the grid and the seeds (bnexp.config.loading).
No TensorFlow here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bnexp.config.keys import leaf_keys
from bnexp.config.schema import NAME_PATTERN, Config, RunSpec, input_shape
from bnexp.config.sections import SweepConfig
from bnexp.errors import ConfigError, did_you_mean
from bnexp.yamltext import format_value

LABEL = "label"  # the key of an arm's label, in sweep.cells and in a run's cell
MAX_LABEL = 80  # as a config's name


@dataclass(frozen=True)
class Arm:
    """One arm of sweep.cells: its index in the list, its label and the keys it sets.
    A config without sweep.cells has one arm, NO_ARM: no index, no label, no keys."""

    index: int | None = None
    label: str | None = None
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def entries(self) -> dict[str, Any]:
        """What a run's cell records of its arm: the label first, then the keys; {} for
        NO_ARM (a run's cell is then its grid values, as before arms existed)."""
        return {LABEL: self.label, **self.keys} if self.index is not None else {}

    @property
    def where(self) -> str:
        return f"sweep.cells[{self.index}]"


NO_ARM = Arm()


def arms_of(sweep: SweepConfig, source: str) -> list[Arm]:
    """The arms of sweep.cells, checked, in order; [NO_ARM] without sweep.cells. Labels
    are unique: a label given twice, or two arms whose values make the same label."""
    if sweep.cells is None:
        return [NO_ARM]
    arms: list[Arm] = []
    labelled: dict[str, Arm] = {}
    for index, cell in enumerate(sweep.cells):
        arm = _arm(index, cell, sweep, source)
        twin = labelled.setdefault(arm.label, arm)
        if twin is not arm:
            raise ConfigError(f"{source}: {twin.where} and {arm.where} are both labelled "
                              f"{arm.label!r} (an arm without a label is labelled by its "
                              "values); give each arm a label of its own")
        arms.append(arm)
    return arms


def _arm(index: int, cell: dict, sweep: SweepConfig, source: str) -> Arm:
    where = f"sweep.cells[{index}]"
    keys = {key: value for key, value in cell.items() if key != LABEL}
    for key in keys:
        check_key(key, source, where)
        if key in sweep.grid:
            raise ConfigError(f"{source}: {where} and sweep.grid both set {key}; set it in "
                              "one place (the grid sets it in every arm)")
    label = cell.get(LABEL)
    if label is None and not keys:
        raise ConfigError(f"{source}: {where}: an empty arm; give it keys to set, or a "
                          "label (an arm of the config as written)")
    if label is None:
        label = label_of(keys)
    elif not (isinstance(label, str) and len(label) <= MAX_LABEL
              and re.fullmatch(NAME_PATTERN, label)):
        shown = repr(label) if isinstance(label, str) else f"{label} (not text)"
        raise ConfigError(f"{source} ({where}.label): expected letters, digits, '.', '_' "
                          f"or '-', starting with a letter or digit, at most {MAX_LABEL}; "
                          f"got {shown[:60]}")
    return Arm(index, label, keys)


def label_of(keys: dict[str, Any]) -> str:
    """The label of an arm without one: its values as YAML writes them, joined by -, each
    run of characters other than letters, digits and . as one - (sgd-0.9-0.1, as its run
    folders show it). The trap: two arms may make one label (-1 and 1, or [a, b] and
    a-b); arms_of refuses that."""
    parts = [re.sub(r"[^A-Za-z0-9.]+", "-", str(format_value(v))).strip("-.") or "x"
             for v in keys.values()]
    return "-".join(parts)[:MAX_LABEL]


def check_key(key: str, source: str, where: str) -> None:
    """ConfigError unless `key` is a dotted key a sweep may set (`where`: sweep.grid or
    an arm). Not seed nor name: sweep.seeds sets the seeds, and the name is the config's."""
    if key in ("seed", "name"):
        raise ConfigError(f"{source}: {where}: {key} is not a sweep key (use sweep.seeds; "
                          "the name is the config's)")
    known = leaf_keys()
    if key not in known:
        raise ConfigError(f"{source}: {where}: {key!r} is not a config key"
                          f"{did_you_mean(key, known)}")


def set_by_every_arm(arms: list[Arm]) -> list[str]:
    """The keys every arm sets (none for NO_ARM): a --set of one is ignored in every run."""
    return [key for key in arms[0].keys if all(key in arm.keys for arm in arms)]


def refuse_twin(twin: RunSpec | None, spec: RunSpec, source: str) -> None:
    """ConfigError where a run of the sweep repeats an earlier one (`twin`, None where it
    does not): two arms that make the same run, or a grid value listed twice ([0.9,
    0.9], or [1, 1.0])."""
    if twin is None:
        return
    if twin.arm != spec.arm:
        raise ConfigError(f"{source}: sweep.cells: the arms {twin.arm[LABEL]!r} and "
                          f"{spec.arm[LABEL]!r} make the same run (it would train twice)")
    raise ConfigError(f"{source}: sweep.grid: the cells {_grid(twin)} and {_grid(spec)} "
                      "are the same run (it would train twice)")


def _grid(spec: RunSpec) -> dict[str, Any]:
    return {key: value for key, value in spec.cell.items() if key not in spec.arm}


# ---------------------------------------------------------------- cells of a sweep


def cells_of(specs: list[RunSpec]) -> list[RunSpec]:
    """The first run of each cell (an arm and grid values; seeds aside), in the runs'
    order (arms, then the grid's product): what `bnexp summary --cell N` numbers from 0."""
    first: dict[str, RunSpec] = {}
    for spec in specs:
        first.setdefault(repr(list(spec.cell.items())), spec)
    return list(first.values())


def pick_cell(specs: list[RunSpec], n: int | None, source: str) -> tuple[RunSpec, str]:
    """The run whose model `bnexp summary` shows (cell n, else cell 0) and the line that
    says which cell that is. The line is "" where n is None and every cell has the same
    model (the one shown is every run's); the trap it closes: a sweep over the model
    showed its first cell's model as if it were the only one."""
    cells = cells_of(specs)
    if n is not None and not 0 <= n < len(cells):
        raise ConfigError(f"{source}: --cell {n}: the config has {len(cells)} cell"
                          f"{'s' * (len(cells) != 1)} (0 to {len(cells) - 1})")
    models = len({_model_key(spec.config) for spec in cells})
    if n is None and models == 1:
        return cells[0], ""
    spec = cells[n or 0]
    what = cell_text(spec)
    line = f"cell {n or 0} of {len(cells)}" + (f" ({what})" if what else "")
    if n is None:
        line += (f"; the cells make {models} different models: --cell N (0 to "
                 f"{len(cells) - 1}) for the others")
    return spec, line


def cell_text(spec: RunSpec) -> str:
    """A run's cell as validate and summary show it: its arm's label and its grid values
    (the keys an arm sets are listed once, under its label)."""
    return ", ".join(f"{key}={value}" for key, value in spec.cell.items()
                     if key == LABEL or key not in spec.arm)


def _model_key(config: Config) -> tuple:
    """What `bnexp summary` shows a model from: the model section, the input shape, and
    train.trainable (which of the parameters it counts as trainable, which as frozen)."""
    return config.model.model_dump_json(), input_shape(config.data), config.train.trainable
