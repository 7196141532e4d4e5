"""Reading configs: safe YAML, ``--set`` overrides, validation with one line per
mistake, sweep expansion into runs, and the config's hash.

Unknown keys, wrong types and impossible values raise ``ConfigError`` with one line per
mistake (all a file's, bnexp.config.messages), each naming the file (or the --set /
sweep.grid entry) and the dotted key. The rules checked once the schema holds (shapes,
what trains) stop at their first.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bnexp.config.cells import (
    NO_ARM,
    Arm,
    arms_of,
    check_key,
    refuse_twin,
    set_by_every_arm,
)
from bnexp.config.messages import describe_all, in_arm, mistakes_error
from bnexp.config.messages import kind as _kind
from bnexp.config.messages import show as _show
from bnexp.config.presets import check_shapes
from bnexp.config.schema import Config, RunSpec
from bnexp.config.sections import SweepConfig
from bnexp.config.smoke_runs import smoke_specs
from bnexp.config.trainable import check_trains
from bnexp.errors import ConfigError
from bnexp.safeopen import TooLarge, read_bounded
from bnexp.yamltext import MAX_BYTES, AmbiguousNumber, parse_yaml

MAX_RUNS = 20_000  # runs one command may train (at 0.3 s a run: 1.7 hours); 100,000 took
# validate 34 s and 516 MB to check and list (about 0.35 ms of pydantic per run); 20,000: 8 s


def read_yaml(path: Path) -> dict[str, Any]:
    """The raw mapping of a config file; ConfigError if unreadable or not a mapping."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a YAML config file")
    try:
        raw = parse_yaml(read_bounded(path, MAX_BYTES).decode("utf-8"))
    except TooLarge:
        raise ConfigError(_too_large(path)) from None
    except BlockingIOError:
        raise ConfigError(f"{path}: cannot read: it waits for data that may never come "
                          "(not a file on disk, e.g. /proc/kmsg)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {type(e).__name__}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping of config keys")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {_kind(raw)}")
    return raw


def _too_large(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_BYTES:
        return f"{path}: {size:,} bytes: too large for a config (at most {MAX_BYTES:,})"
    return f"{path}: more than {MAX_BYTES:,} bytes (it does not end): not a config"


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str = "config"
                    ) -> dict[str, Any]:
    """A copy of `raw` with each ``KEY=VALUE`` set; VALUE is read as YAML (0.1, true, [1, 2])."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source} (--set {item!r}): expected KEY=VALUE, "
                              "e.g. model.bn.placement=after")
        try:
            value = parse_yaml(text)
        except (yaml.YAMLError, RecursionError) as e:
            why = f": {e.problem}" if isinstance(e, AmbiguousNumber) else ""
            raise ConfigError(f"{source} (--set {key.strip()[:80]}): cannot read value "
                              f"{_show(text)}{why}") from None
        _set_dotted(out, key.strip(), value, source=f"{source} (--set {key})")
    return out


def load(path: str | Path, overrides: list[str] | None = None,
         room: int | None = None) -> list[RunSpec]:
    """Read, override, validate and expand a config file into the runs it describes (at
    most `room` of them, by default MAX_RUNS: what is left after the configs before it)."""
    path = Path(path)
    raw = read_yaml(path)
    raw.setdefault("name", _default_name(path))
    raw = apply_overrides(raw, overrides or [], str(path))
    return expand(raw, source=str(path), overrides=overrides or [], room=room)


def expand(raw: dict[str, Any], source: str, overrides: list[str] = (),
           room: int | None = None) -> list[RunSpec]:
    """sweep.cells' arms, each times the Cartesian product of sweep.grid, times
    sweep.seeds; one validated Config each. Without sweep.cells, the config is one arm."""
    base = validate(raw, source, overrides)
    sweep = base.sweep or SweepConfig()
    for key in sweep.grid:
        check_key(key, source, "sweep.grid")
    arms = arms_of(sweep, source)
    _check_overrides_survive(overrides, sweep, source, set_by_every_arm(arms))
    seeds = sweep.seeds if sweep.seeds is not None else [base.seed]
    _check_size(sweep.grid, seeds, source, room, arms)
    plain = {k: v for k, v in raw.items() if k != "sweep"}
    runs, seen, mistakes = [], {}, []
    for arm in arms:
        arm_raw = copy.deepcopy(plain)
        for key, value in arm.keys.items():
            _set_dotted(arm_raw, key, value, source=f"{source} ({arm.where}.{key})")
        for values in itertools.product(*sweep.grid.values()):
            cell = dict(zip(sweep.grid, values, strict=True))
            cell_raw = copy.deepcopy(arm_raw)
            for key, value in cell.items():
                _set_dotted(cell_raw, key, value, source=f"sweep.grid.{key}")
            for seed in seeds:
                cell_raw["seed"] = seed
                try:
                    config = validate(cell_raw, source, overrides, grid=list(cell), arm=arm)
                except ConfigError as e:  # every cell's mistakes, each said once
                    mistakes += getattr(e, "mistakes", e.args)
                    continue
                spec = RunSpec(config=config, cell={**arm.entries, **cell},
                               overrides=_named(overrides), source=source, arm=arm.entries)
                if not mistakes:  # a twin is said once the mistakes are fixed
                    refuse_twin(_same_run(seen, spec), spec, source)
                runs.append(spec)
    if mistakes:
        raise mistakes_error(mistakes, source)
    return runs


def _check_overrides_survive(overrides, sweep: SweepConfig, source: str,
                             every_arm: list[str] = ()) -> None:
    """ConfigError for a --set the sweep would override in every run (the grid's cells,
    the keys every arm sets and sweep.seeds are set after the overrides): `--set
    train.epochs=1` on a grid over train.epochs, or `--set seed=5` beside sweep.seeds,
    was silently ignored. A key only some arms set is theirs in those arms alone."""
    setters = {**dict.fromkeys(sweep.grid, "sweep.grid"),
               **dict.fromkeys(every_arm, "sweep.cells")}
    for item in overrides:
        key, _, text = (part.strip() for part in item.partition("="))
        if key == "seed" and sweep.seeds is not None:
            raise ConfigError(f"{source} (--set seed): sweep.seeds sets every run's seed, so "
                              "this value would be ignored; set sweep.seeds instead")
        for set_key, by in setters.items():
            if set_key.startswith(f"{key}."):  # a section: hidden where it holds the key
                hidden = _holds(parse_yaml(text), set_key[len(key) + 1:])
            else:
                hidden = key == set_key or key.startswith(f"{set_key}.")
            if hidden:
                every = "run" if by == "sweep.grid" else "arm"
                raise ConfigError(f"{source} (--set {key}): {by} sets {set_key} in every "
                                  f"{every}, so this value would be ignored; change the "
                                  f"config's {by} instead")


def _holds(value, dotted: str) -> bool:
    """Whether a mapping `value` set by --set holds the dotted key (a section's key)."""
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _check_size(grid: dict[str, list], seeds: list, source: str, room: int | None,
                arms: list[Arm] = (NO_ARM,)) -> None:
    """ConfigError if the sweep expands to more than `room` runs, said before expanding:
    four keys of 50 values and 100 seeds are 625 million runs, which would fill the
    memory while being listed (10,000 runs take 3 s and 90 MB to check). The trap:
    several configs of one command, each under MAX_RUNS, add up (room is what is left)."""
    total = math.prod(len(values) for values in grid.values()) * len(seeds) * len(arms)
    room = MAX_RUNS if room is None else room
    if total > room:
        sizes = [f"{len(arms)} arms"] if arms[0].index is not None else []
        sizes += [f"{len(values)} {key}" for key, values in grid.items()]
        sizes.append(f"{len(seeds)} seeds")
        limit = (f"more than {MAX_RUNS:,}; split it into several configs" if room == MAX_RUNS
                 else f"more than the {room:,} left of {MAX_RUNS:,} for one command after "
                 "the configs before it; train them in separate commands")
        raise ConfigError(f"{source}: sweep: {total:,} runs ({' x '.join(sizes)}): {limit}")


def load_all(paths: list[Path], overrides: list[str], smoke_runs: bool = False) -> list[RunSpec]:
    """Every run of every config file, in order (smoke_runs: each file's first seed, cut
    short), all read and checked before any trains. A run that two files (or one file
    given twice) both ask for is bad input, as a seed listed twice is; but smoke runs
    that cutting made equal (a grid over train.epochs or data.limit) are one smoke run."""
    runs, seen = [], {}
    for path in paths:
        some = load(path, overrides, room=MAX_RUNS - len(runs))
        for spec in smoke_specs(some) if smoke_runs else some:
            twin = _same_run(seen, spec)
            if twin and smoke_runs:
                continue
            if twin:
                raise ConfigError(f"{spec.source}: run {spec.label} is also a run of "
                                  f"{twin.source} (the same run would train twice)")
            runs.append(spec)
    return runs


def _same_run(seen: dict[str, RunSpec], spec: RunSpec) -> RunSpec | None:
    """The run in `seen` (by config hash) that `spec` repeats, else None; records spec."""
    twin = seen.setdefault(config_hash(spec.config), spec)
    return None if twin is spec else twin


def validate(
    raw: dict[str, Any], source: str, overrides: list[str] = (), grid: list[str] = (),
    arm: Arm = NO_ARM,
) -> Config:
    """A Config from a raw mapping, or ConfigError with one line per offending key (each
    naming the --set, grid key or arm of sweep.cells it came from). The checks that need
    a valid schema (shapes, what trains) run only then, and stop at their first."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        lines = describe_all(e.errors(), source, overrides, grid, arm)
        raise mistakes_error(lines, source) from None
    try:
        check_shapes(config)
        check_trains(config)
    except ValueError as e:
        raise ConfigError(f"{in_arm(source, arm)}: {e}") from None
    return config


def to_yaml(config: Config) -> str:
    """The resolved config as YAML; `bnexp train` on it reproduces the run."""
    return yaml.safe_dump(config.model_dump(exclude={"sweep"}), sort_keys=False)


def config_hash(config: Config) -> str:
    """A short digest of the resolved config (seed included): equal hashes, equal runs.

    Keys at their default values are left out, so a key added to the schema later (with
    a default that keeps the old behaviour) does not change the hash of earlier runs: a
    re-run of a sweep still finds them finished."""
    text = json.dumps(config.model_dump(exclude={"sweep"}, exclude_defaults=True),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- helpers


def _default_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.") or "bnexp"
    return stem[:80]


def _set_dotted(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {part!r} is not a section (it holds {child!r})")
        node = child
    node[parts[-1]] = value



def _named(overrides: list[str]) -> dict[str, Any]:
    """The --set overrides that change a run (not its name or sweep), for its folder name."""
    named = {}
    for item in overrides:
        key, _, text = item.partition("=")
        key = key.strip()
        if key not in ("name", "seed") and not key.startswith("sweep"):
            named[key] = parse_yaml(text)
    return named
