"""A config's mistakes as the lines bnexp prints: one line per mistake, each naming the
file (or the --set, sweep.grid entry or arm of sweep.cells it came from) and the dotted
key, at most MAX_MISTAKES of them and then how many more.

Pydantic reports every field that fails in one validation; a union field fails once per
branch (model.use_bias: literal['auto'] and bool), which is one mistake and one line.
No TensorFlow here.
"""

from __future__ import annotations

import re
from typing import Any

from bnexp.config.cells import NO_ARM, Arm
from bnexp.config.keys import section_at
from bnexp.errors import ConfigError, did_you_mean

MAX_MISTAKES = 20  # lines a config error shows; the rest are counted ("... and 3 more")

_BRANCH = re.compile(r"^(literal\[.*\]|bool|int|float|str|none|list\[.*\]|dict\[.*\]|"
                     r"function-.*|tagged-union\[.*\]|Initializer)$")


def mistakes_error(lines: list[str], source: str) -> ConfigError:
    """A ConfigError of one line per mistake: the first MAX_MISTAKES of `lines` (each
    once), then a line counting the rest. Its `mistakes` are all of them."""
    lines = list(dict.fromkeys(lines))
    shown = lines[:MAX_MISTAKES]
    if len(lines) > MAX_MISTAKES:
        rest = len(lines) - MAX_MISTAKES
        shown.append(f"{source}: ... and {rest} more mistake{'s' if rest > 1 else ''}")
    error = ConfigError(*shown)
    error.mistakes = lines
    return error


def describe_all(errors: list[dict], source: str, overrides: list[str] = (),
                 grid: list[str] = (), arm: Arm = NO_ARM) -> list[str]:
    """One line per mistake among pydantic's `errors`, in pydantic's order: the errors of
    one field (the branches of a union) are one mistake, described by the first."""
    groups: dict[tuple, list[dict]] = {}
    for error in errors:
        groups.setdefault(_field_of(error), []).append(error)
    return [_describe(_first_error(group), source, overrides, grid, arm)
            for group in groups.values()]


def _field_of(error: dict) -> tuple:
    """The field an error belongs to: its location up to the first union-branch name
    (model.use_bias.bool and model.use_bias.literal['auto'] -> model.use_bias), else its
    location without branch names (an unknown key's own name always kept)."""
    loc = error["loc"]
    head = loc[:-1] if error["type"] == "extra_forbidden" else loc
    for i, part in enumerate(head):
        if isinstance(part, str) and _BRANCH.match(part):
            return ("branch", *loc[:i])
    return ("field", *_field_loc(loc, keep_last=error["type"] == "extra_forbidden"))


def _first_error(errors: list[dict]) -> dict:
    """The first error, with pydantic's union-branch names taken out of its location
    (model.use_bias.literal['auto'] -> model.use_bias); where the other branch of such a
    union is a boolean, "true or false" joins what was expected."""
    first = dict(errors[0])
    first["loc"] = _field_loc(first["loc"], keep_last=first["type"] == "extra_forbidden")
    if first["type"] == "literal_error" and any(
            e["type"] == "bool_type" and _field_loc(e["loc"]) == first["loc"] for e in errors):
        ctx = dict(first.get("ctx", {}))
        ctx["expected"] = ctx.get("expected", "").replace(" or ", ", ") + ", true or false"
        first["ctx"] = ctx
    return first


def _field_loc(loc, keep_last: bool = False) -> tuple:
    """`loc` without union-branch names. The trap: a user's own key can look like one
    (``none``, ``int``); the key an extra_forbidden error names is always the user's."""
    head, tail = (loc[:-1], loc[-1:]) if keep_last else (loc, ())
    return tuple(p for p in head if not (isinstance(p, str) and _BRANCH.match(p))) + tuple(tail)


def _describe(error: dict, source: str, overrides: list[str], grid: list[str],
              arm: Arm = NO_ARM) -> str:
    """One line for a pydantic error: where, what was expected, what was received."""
    loc = tuple(f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"])
    dotted = ".".join(loc).replace(".[", "[")
    where = _origin(dotted, source, overrides, grid, arm)
    if error["type"] == "extra_forbidden" and loc:
        section = section_at(loc[:-1])
        names = list(section.model_fields) if section else []
        hint = did_you_mean(str(loc[-1]), names)
        return f"{where}: {dotted}: unknown key{hint}"
    message = re.sub(r" or instance of \w+", "", error["msg"])
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    hint = ""
    if error["type"] == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"expected {expected}"
        if isinstance(error["input"], str):
            hint = did_you_mean(error["input"], re.findall(r"'([^']*)'", expected))
    elif error["type"] == "string_pattern_mismatch":
        message = "expected letters, digits, '.', '_' or '-', starting with a letter or digit"
    got = "" if error["type"] == "value_error" else f"; got {show(error.get('input'))}{hint}"
    prefix = f"{dotted}: " if dotted else ""
    return f"{where}: {prefix}{message[0].lower() + message[1:]}{got}"


def _origin(dotted: str, source: str, overrides: list[str], grid: list[str],
            arm: Arm = NO_ARM) -> str:
    """Where an error at `dotted` came from: a --set, a key of the run's arm, a grid key,
    else the arm (a rule across keys: the base config alone was valid), else the file."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if _within(dotted, key) or key.startswith(dotted + "."):
            return f"{source} (--set {key})"
    named = [key for key in arm.keys if _within(dotted, key)]
    inside = [key for key in arm.keys if key.startswith(dotted + ".")]  # a rule of a section
    if named or len(inside) == 1:
        return f"{source} ({arm.where}.{(named or inside)[0]})"
    for key in grid:
        if _within(dotted, key):
            return f"{source} (sweep.grid.{key})"
    return in_arm(source, arm)


def in_arm(source: str, arm: Arm) -> str:
    """The source of an error in a run of `arm`: the file, and the arm where there is one."""
    return source if arm.index is None else f"{source} ({arm.where})"


def _within(dotted: str, key: str) -> bool:
    """Whether the error's location `dotted` lies in `key`: the key itself, one of its
    sub-keys (model.bn.momentum in model.bn) or list items (model.hidden[1])."""
    return dotted == key or dotted.startswith((key + ".", key + "["))


def show(value: Any) -> str:
    """A value as an error quotes it: strings quoted, others with their kind; cut at 60."""
    if isinstance(value, int) and value.bit_length() > 10_000:  # str() refuses 4,300 digits
        return f"an integer of {value.bit_length():,} bits"
    text = repr(value) if isinstance(value, str) else f"{value} ({kind(value)})"
    return text if len(text) < 60 else text[:57] + "..."


def kind(value: Any) -> str:
    """What a YAML value is, in words: a mapping, a list, a string, ..."""
    kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)
