"""The Python API's one boundary: every argument of every public function (bnexp.api)
checked, as the command line checks its options, before anything is read, written or
imported (TensorFlow); a wrong one is BadInput, one line naming the parameter:

    jobs: expected a whole number >= 0, got '2'
    set[1]: expected a string, got 5 (int)

Each parameter's annotation says what it takes and how it is checked: an `Annotated`
type whose metadata is a Check (PathArg holds IsPath(), MaybeStrs Maybe(Texts()), a
whole number `Annotated[int, Whole(0)]`); `@checked` reads them once, when bnexp.api is
imported, and refuses a public function with a parameter that has none. What a Python
user would pass is taken as the CLI would: a single string where a list of strings is
taken (one item, not its characters), an os.PathLike wherever a path is, a numpy scalar
wherever a number or string is (also anywhere inside a dict config, with numpy arrays as
lists). No TensorFlow, no pandas here.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

from bnexp.config import Config
from bnexp.errors import BadInput, did_you_mean
from bnexp.safeopen import path_problem

P = ParamSpec("P")
R = TypeVar("R")


class Check:
    """What a parameter takes (`words`, for messages) and its value as the function gets
    it; BadInput naming the parameter where the value is not one."""

    words = ""

    def __call__(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def refuse(self, value: Any, name: str) -> BadInput:
        error = BadInput(f"{name}: expected {self.words}, got {shown(value)}")
        error.refused_by = self  # type: ignore[attr-defined]
        return error


class Whole(Check):
    """A whole number (an int or a numpy integer, not a bool) >= least."""

    def __init__(self, least: int):
        self.least = least
        self.words = f"a whole number >= {least}"

    def __call__(self, value, name):
        if isinstance(value, bool) or not isinstance(value, int) or value < self.least:
            raise self.refuse(value, name)
        return value


class Text(Check):
    """A string; with numbers=True a whole number too, as its digits (`--unit 3`)."""

    def __init__(self, numbers: bool = False):
        self.numbers = numbers
        self.words = "a string or a whole number" if numbers else "a string"

    def __call__(self, value, name):
        if self.numbers and isinstance(value, int) and not isinstance(value, bool):
            if value.bit_length() > 64:  # no unit's number; str() refuses 4,300 digits
                raise self.refuse(value, name)
            return str(value)
        if not isinstance(value, str):
            raise self.refuse(value, name)
        return value


class Flag(Check):
    words = "True or False"

    def __call__(self, value, name):
        if not isinstance(value, bool):
            raise self.refuse(value, name)
        return value


class IsPath(Check):
    """A path: a string or an os.PathLike (pathlib.Path), as a Path; refused as the CLI
    refuses it: empty (Path("") is the current folder), or one no OS could open (a NUL, a
    name too long: bnexp.safeopen.path_problem)."""

    words = "a path (a string or an os.PathLike)"

    def __call__(self, value, name):
        if isinstance(value, os.PathLike):
            try:
                value = os.fspath(value)
            except Exception:  # a PathLike whose __fspath__ fails is not one
                raise self.refuse(value, name) from None
        if not isinstance(value, str):
            raise self.refuse(value, name)
        if not value:
            raise BadInput(f"{name}: an empty path; give a file or folder ('.' for this one)")
        problem = path_problem(value)
        if problem:
            raise BadInput(f"{name}: {problem}")
        return Path(value)


class Texts(Check):
    """Strings, as a list: a list or tuple of them, or one string (one item: `by="x"` is
    ["x"], not its characters)."""

    words = "a string or a list of strings"
    _item = Text()

    def __call__(self, value, name):
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list | tuple):
            raise self.refuse(value, name)
        return [self._item(plain(item), f"{name}[{i}]") for i, item in enumerate(value)]


class Maybe(Check):
    """None, or what `check` takes."""

    def __init__(self, check: Check):
        self.check = check
        self.words = f"{check.words} or None"

    def __call__(self, value, name):
        if value is None:
            return None
        try:
            return self.check(value, name)
        except BadInput as e:  # "expected ... or None" where the value was refused whole
            raise (self.refuse(value, name) if getattr(e, "refused_by", None) is self.check
                   else e) from None


class IsConfig(Check):
    """A config: a YAML file's path (as IsPath), a dict of its keys (numpy scalars and
    arrays, tuples and os.PathLikes inside it made plain Python: ints, floats, lists,
    strings) or a bnexp.config.Config."""

    words = "a path, a dict or a Config"

    def __call__(self, value, name):
        if isinstance(value, Config):
            return value
        if isinstance(value, dict):
            return _plain_tree(value)
        if isinstance(value, str | os.PathLike):
            return IsPath()(value, name)
        raise self.refuse(value, name)


# the parameters' types: what a type checker sees, and the Check that runs
PathArg = Annotated[str | os.PathLike[str], IsPath()]
MaybePath = Annotated[str | os.PathLike[str] | None, Maybe(IsPath())]
Str = Annotated[str, Text()]
MaybeStr = Annotated[str | None, Maybe(Text())]
Strs = Annotated[str | list[str] | tuple[str, ...], Texts()]
MaybeStrs = Annotated[str | list[str] | tuple[str, ...] | None, Maybe(Texts())]
Bool = Annotated[bool, Flag()]
ConfigOrPath = Annotated[str | os.PathLike[str] | dict[str, Any] | Config, IsConfig()]


def listed(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """A Strs or MaybeStrs parameter as the list @checked made of it, for the type
    checker's sake: inside a @checked function it is a list already."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def checked(fn: Callable[P, R]) -> Callable[P, R]:
    """fn, its arguments checked first by the Checks its annotations name (defaults
    too), numpy scalars made Python numbers first; a call that does not fit the signature
    (an unknown keyword, a missing argument) is BadInput too, as an unknown option is."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    checks: dict[str, Check] = {}
    for name in signature.parameters:
        found = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, Check)]
        if len(found) != 1:
            raise TypeError(f"{fn.__qualname__}({name}): a public function's parameter "
                            "needs one Check in its annotation (bnexp.api_args)")
        checks[name] = found[0]

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise BadInput(f"{fn.__name__}(): {e}{_hint(e, signature)}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            bound.arguments[name] = checks[name](plain(value), name)
        return fn(*bound.args, **bound.kwargs)

    return call


def _hint(error: TypeError, signature: inspect.Signature) -> str:
    """' (did you mean 'metric'?)' for an unknown keyword near a parameter's name."""
    word = str(error).rpartition(" ")[2].strip("'")
    if "unexpected keyword" not in str(error):
        return ""
    return did_you_mean(word, list(signature.parameters))


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (np.int64(3) -> 3), a numpy array as a
    list; anything else as it is. numpy is not imported for it."""
    np = sys.modules.get("numpy")
    if np is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _plain_tree(value: Any, depth: int = 0) -> Any:
    """A dict config's values made what YAML would give: numpy scalars and arrays as
    Python numbers and lists, tuples as lists, os.PathLikes as strings (data.path)."""
    if depth > 200:  # deeper than any config; the schema refuses it with a message
        return value
    value = plain(value)
    if isinstance(value, dict):
        return {_plain_tree(k, depth + 1): _plain_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_tree(v, depth + 1) for v in value]
    if isinstance(value, os.PathLike):
        try:
            return os.fspath(value)
        except Exception:  # not a path after all: the schema says what it is
            return value
    return value


def shown(value: Any) -> str:
    """A value as a message quotes it: a string quoted, None and booleans as Python
    writes them, anything else with its type; at most 60 characters."""
    try:
        text = repr(value)
    except Exception:  # a __repr__ that fails, an int too long for repr
        text = f"<{type(value).__name__}>"
    else:
        if not (isinstance(value, str | bool) or value is None):
            text = f"{text} ({type(value).__name__})"
    return text if len(text) <= 60 else text[:57] + "..."
