"""Config text and values without the schema: the hardened YAML loader (`parse_yaml`),
`flatten` and `format_value`. compare and plot read run folders' configs with these and
never import pydantic and the schema (0.2 s of compare's start).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_BYTES = 1 << 16  # a config is a few KiB (the largest shipped: 2 KiB); PyYAML reads
# ~1 MiB a minute of dense YAML, so a larger file would look like a hang
MAX_INT_BITS = 64  # the widest integer a config holds (seeds, sizes): a bigger one is a typo
MAX_DEPTH = 32  # nesting deeper than this is not a config either


class _Loader(yaml.SafeLoader):
    """Safe loading (no Python objects) that reads 1e-3 as a float, as users expect, and
    refuses what only a hostile or broken file holds: aliases (a "billion laughs" bomb
    expands them exponentially), explicit tags (`!!int abc`, `!!set`: their constructors
    fail with Python errors, not YAML ones), nesting deeper than MAX_DEPTH (a RecursionError),
    duplicate keys (the second would silently replace the first) and integers with a
    leading zero (YAML 1.1 reads 010 as octal 8)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed in a config",
                event.start_mark)
        event = self.peek_event()
        if getattr(event, "tag", None) not in (None, "!"):  # !!int, !!set, !!binary, !x ...
            raise yaml.composer.ComposerError(
                None, None, f"explicit tags ({event.tag}) are not allowed in a config: "
                "write the value plainly", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a name, not a list or mapping",
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        _refuse_ambiguous_number(node)
        value = super().construct_yaml_int(node)
        if value.bit_length() > MAX_INT_BITS:  # 0x and 0b numbers pass Python's 4,300-digit
            raise yaml.constructor.ConstructorError(  # limit; no config value needs one
                None, None, f"an integer of {value.bit_length():,} bits: too large (at most "
                f"{MAX_INT_BITS} bits)", node.start_mark)
        return value

    def construct_yaml_float(self, node):
        if "." not in str(node.value) or ":" in str(node.value):  # 09, 09e2, 1:30.5
            _refuse_ambiguous_number(node)
        return super().construct_yaml_float(node)


class AmbiguousNumber(yaml.constructor.ConstructorError):
    """A number YAML 1.1 reads otherwise than it looks; its message says how to write it."""


def _refuse_ambiguous_number(node) -> None:
    """Numbers YAML 1.1 reads otherwise than they look: 010 (octal 8) and 1:30 (base 60:
    90, so `epochs: 1:30` trained 90 epochs)."""
    if ":" in str(node.value):
        raise AmbiguousNumber(
            None, None, f"{node.value}: a base-60 number to YAML 1.1 (1:30 reads as 90): "
            "quote it, or write the number", node.start_mark)
    text = str(node.value).lstrip("+-").replace("_", "")
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        raise AmbiguousNumber(
            None, None, f"{node.value}: a leading zero is ambiguous (YAML 1.1 reads it "
            "as octal): write the number without it", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*)\.?[0-9_]*(?:[eE][-+]?[0-9]+)?$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$
    |^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
# The float resolver above would swallow plain integers; put the int resolver first.
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    _resolvers.sort(key=lambda r: r[0] != "tag:yaml.org,2002:int")


def parse_yaml(text: str) -> Any:
    """A YAML value read with the hardened loader; yaml.YAMLError if refused, whatever
    the reason (a constructor's own ValueError or TypeError too)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as e:
        raise yaml.YAMLError(f"cannot read a value ({type(e).__name__})") from None


def format_value(value: Any) -> Any:
    """A config value as comparable, printable scalar, as YAML writes it: lists become
    "[300, 100]", None "null", booleans "true" / "false"; numbers and strings stay."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return value


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"model": {"bn": {"placement": "after"}}} -> {"model.bn.placement": "after"}."""
    out = {}
    stack = [(prefix, iter(tree.items()))]
    while stack:  # depth first, in the tree's order, on a stack of its own
        prefix, items = stack[-1]
        for key, value in items:
            if isinstance(value, dict):
                stack.append((f"{prefix}{key}.", iter(value.items())))
                break
            out[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return out
