"""The config reference (docs/config.md), generated from the schema's own field docs.

    python -m bnexp.config.reference > docs/config.md

A test regenerates it and fails when docs/config.md differs, so the reference can
never drift from the schema: change a default or a docstring, then run the line above.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bnexp.config.schema import DEFAULT_HIDDEN, Config, format_value, section_type

INTRO = """# Config reference

Generated from the schema (`bnexp/config/schema.py`) by
`python -m bnexp.config.reference > docs/config.md`; a test fails when they differ.

Every key has a default; a YAML file only states what differs. Unknown keys, wrong
types and values out of range are errors (exit code 2) naming the file and the key.
`--set KEY=VALUE` overrides any key from the command line; `sweep.grid` takes the
same dotted keys.
"""


def markdown() -> str:
    """The whole reference: one table per section, in schema order."""
    return "\n".join([INTRO, *_section("", Config)])


def _section(prefix: str, model: type[BaseModel]) -> list[str]:
    title = f"`{prefix[:-1]}`: {_first_line(model.__doc__)}" if prefix else "Top level"
    tables = [_table(title, prefix, model)]
    for name, info in model.model_fields.items():
        sub = section_type(info.annotation)
        if sub is not None:
            tables += _section(f"{prefix}{name}.", sub)
    return tables


def _table(title: str, prefix: str, model: type[BaseModel]) -> str:
    lines = [f"## {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if section_type(info.annotation) is not None:
            continue
        meaning = " ".join((info.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{prefix}{name}` | {_type(info.annotation, info.metadata)} | "
                     f"{_default(prefix + name, info.default)} | {meaning} |")
    return "\n".join(lines) + "\n"


def _type(annotation: Any, metadata: list) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        text = " \\| ".join(_yaml(v) for v in typing.get_args(annotation))
    else:
        text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
        text = text.replace(" | ", " or ").replace("None", "null")
    bounds = []
    for item in metadata:
        for op, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                         ("max_length", "length <=")):
            if getattr(item, op, None) is not None:
                bounds.append(f"{sign} {getattr(item, op)}")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(key: str, value: Any) -> str:
    if value is PydanticUndefined:
        return ""
    if key == "model.hidden":
        return "null (" + ", ".join(f"{k} {v}" for k, v in DEFAULT_HIDDEN.items()) + ")"
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    return "{}" if value == {} else str(format_value(value))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""


if __name__ == "__main__":
    print(markdown(), end="")
