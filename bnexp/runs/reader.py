"""Reading one run folder back: its summary.json and config.yaml as a RunRecord, the one
reader that train, resume, sweep, compare, plot and doctor use (`search` finds the run
folders beneath a folder, `csvread` reads their CSV files).

It tolerates every broken file: an unreadable or foreign summary.json is a problem to
report, not a crash; a value no reader can use (a number out of range, a date, a wrong
type) reads as absent, and a warning names it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from bnexp.runs.record import RunRecord, effective_status
from bnexp.safeopen import NotARegularFile, read_bounded
from bnexp.yamltext import MAX_BYTES, MAX_INT_BITS, parse_yaml  # a run holds what a config may

MAX_SUMMARY_BYTES = 4 << 20  # summary.json is a few KiB; a bigger one is not bnexp's
MAX_NUMBER = 1e100  # no metric comes near; sums and squares of such numbers stay finite


def read_summary(path: Path) -> dict:
    """summary.json as written; ValueError if it is too large or not JSON (OSError if it
    cannot be read). A whole number of more than 20 digits reads as NaN (never converted:
    Python refuses 4,300 digits), as do NaN and infinities."""
    return _read_summary(path)[0]


def _read_summary(path: Path) -> tuple[object, bool]:
    """(summary.json's value, whether it may hold a value `_plain` drops or changes)."""
    raw = read_bounded(path / "summary.json", MAX_SUMMARY_BYTES, regular=True)
    return _loads(raw.decode("utf-8", errors="replace"), _may_be_odd(raw))


_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789E", b"000000000e")
_ODD_MARKS = (b"NaN", b"Infinity", b"\\u", b"0" * 20, b"e+00", b"e-000")


def _may_be_odd(raw: bytes) -> bool:
    """Whether JSON text may hold a value `_plain` drops or changes: NaN or Infinity, an
    escape (a lone surrogate cannot be encoded), a run of 20 digits (a whole number past
    64 bits), an exponent of +10 or more or of -100 or less (json.dumps, which writes
    summaries, always signs one; a hex hash holds "e" and digits too). A match inside a
    string only costs a walk. Checked on bytes at C speed: a regular expression, or a walk
    of every value, cost compare 0.3-1 s over 10,000 runs (benchmarks/compare_speed.py)."""
    marked = raw.translate(_DIGITS_AS_ZEROS)
    return any(mark in marked for mark in _ODD_MARKS) or _unsigned_exponent(marked)


def _unsigned_exponent(marked: bytes) -> bool:
    """Whether a number outside a string has an unsigned exponent (1e200, 99999E99), which
    json.dumps never writes. A hex hash holds the same bytes ("3e45"): told apart by what
    precedes its digits, a quote or a letter, where a number follows ":", ",", "[" or a
    space. Each candidate costs a few steps; most files hold none or one."""
    at = marked.find(b"0e0")
    while at != -1:
        start = at
        while start > 0 and marked[start - 1] in b"0.-":  # digits read as 0 here
            start -= 1
        if start == 0 or marked[start - 1] in b":,[ \t\r\n":
            return True
        at = marked.find(b"0e0", at + 1)
    return False


def _loads(text: str, odd: bool = True) -> tuple[object, bool]:
    """(the JSON value, odd): json's own fast path where nothing is odd; else whole
    numbers of over 20 digits never converted (Python refuses 4,300) and NaN read as NaN,
    for `_plain` to drop."""
    try:
        if not odd:
            return json.loads(text), False
        return json.loads(text, parse_int=_json_int, parse_constant=lambda _: math.nan), True
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_int(text: str):
    return int(text) if len(text) <= 20 else math.nan  # Python refuses 4,300 digits


def read_text(file: Path, limit: int) -> str:
    """A text file read whole, at most `limit` bytes (never an endless file or a link to
    one, never a FIFO, nor anything else not a regular file); undecodable bytes become U+FFFD."""
    return read_bounded(file, limit, regular=True).decode("utf-8", errors="replace")


def read_record(folder: Path, with_config: bool = False,
                warnings: list[str] | None = None) -> RunRecord:
    """The record of one run folder; ValueError saying why it is not a readable run.

    Every value is one compare, plot and doctor can use (`_plain`, `_well_typed`); one
    that is not reads as absent, and `warnings` (where given) gets a line naming it. The
    config (with_config) is summary.json's, else config.yaml's: a mapping with a name."""
    try:
        summary, odd = _read_summary(folder)
    except (OSError, ValueError) as e:
        why = "not a regular file" if isinstance(e, NotARegularFile) else type(e).__name__
        raise ValueError(f"unreadable summary.json ({why})") from None
    if not isinstance(summary, dict) or not _a_summary(summary):
        raise ValueError("summary.json is not a bnexp summary")
    dropped: list[str] = []
    if "status" not in summary:  # an older or hand-made summary: the status is not known
        summary = {**summary, "status": UNKNOWN}
        if warnings is not None:
            warnings.append(f"{folder}: summary.json has no status (an older or hand-made "
                            "summary): read as unknown, counted but not averaged")
    try:
        if odd:  # else every value is plain already (_loads)
            summary = _plain(summary, "summary.json ", dropped)
        summary = _well_typed(summary, dropped)
        config = None
        if with_config:
            config = summary.get("config")
            if not _a_config(config):
                config = _read_config_yaml(folder, dropped)
            config = _well_typed_config(config, dropped)
    except RecursionError:
        raise ValueError("summary.json or config.yaml nested too deeply") from None
    if dropped and warnings is not None:
        warnings.append(f"{folder}: read as absent (not a value a run holds: a number out of "
                        f"range, a date, a wrong type): {', '.join(dropped)}")
    return RunRecord(folder, summary, effective_status(summary), config)


_DAMAGED = object()
UNKNOWN = "unknown"  # the status of a summary that has none
_SUMMARY_MARKS = ("run_id", "config_hash", "epochs_done", "final")


def _a_summary(summary: dict) -> bool:
    """Whether a JSON object is a bnexp summary: its status is text, or it has none but
    fields only bnexp writes (a summary of an older or a hand-made kind)."""
    status = summary.get("status")
    if "status" in summary:
        return isinstance(status, str)
    return any(mark in summary for mark in _SUMMARY_MARKS)


def _plain(value, at: str, dropped: list[str]):
    """A value read from JSON or YAML as the readers can use it, or _DAMAGED: text (lone
    surrogates escaped, \\ud800), whole numbers of at most MAX_INT_BITS bits, finite
    floats of at most MAX_NUMBER in size, true, false, null, and lists and mappings of
    them (keys text). A damaged list item damages its list; a mapping's damaged entry is
    left out and named in `dropped` (`at` is its file and dotted key)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return plain_text(value)
    if isinstance(value, int):
        return value if value.bit_length() <= MAX_INT_BITS else _DAMAGED
    if isinstance(value, float):
        return value if abs(value) <= MAX_NUMBER else _DAMAGED  # NaN fails too
    if isinstance(value, list):
        items = [_plain(item, at, dropped) for item in value]
        return _DAMAGED if any(item is _DAMAGED for item in items) else items
    if not isinstance(value, dict):
        return _DAMAGED  # a YAML date or set
    out = {}
    for key, item in value.items():
        name = f"{at}{key}"
        item = _plain(item, f"{name}.", dropped) if isinstance(key, str) else _DAMAGED
        if item is _DAMAGED:
            dropped.append(plain_text(name))
        else:
            out[plain_text(key)] = item
    return out


def plain_text(text: str) -> str:
    """Text that any output can encode: lone surrogates (JSON's "\\ud800") escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# every field of summary.json a reader or a resumed run uses, and its type ("resumed": a
# resumed run appends to it; "wall_seconds": it adds to it); a field of another type
# reads as absent
_NUMBER = (int, float)
SUMMARY_KINDS = {
    "run_id": str, "schema": int, "epochs_done": int, "epochs": int, "seed": int,
    "config_hash": str,
    "cell": dict, "config": dict, "params": dict, "data": dict, "final": dict, "best": dict,
    "bn_gap": dict, "diverged_at": dict, "started": str, "ended": str,
    "wall_seconds": _NUMBER, "peak_rss_mb": _NUMBER, "pid": int, "pid_started": int,
    "host": str, "versions": dict, "git_commit": str, "error": str, "notes": list,
    "resumed": list, "invocation": dict, "machine": dict,
}


def _well_typed(summary: dict, dropped: list[str] | None = None) -> dict:
    """The summary with every field a reader relies on of the type it expects; a field of
    another type (a hand-edited or foreign file) reads as absent (null silently, the
    rest named in `dropped`)."""
    kinds = SUMMARY_KINDS
    kept = {k: v for k, v in summary.items()
            if k not in kinds or (isinstance(v, kinds[k]) and not isinstance(v, bool))}
    if dropped is not None:
        dropped += [f"summary.json {k}" for k, v in summary.items()
                    if k not in kept and v is not None]
    return kept


def _a_config(config) -> bool:
    """Whether a config as read is one: a mapping with a name (bnexp always writes one)."""
    return isinstance(config, dict) and isinstance(config.get("name"), str)


def _well_typed_config(config: dict, dropped: list[str]) -> dict:
    """The config with its seed a whole number or absent (compare groups and sorts by it)."""
    seed = config.get("seed")
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)):
        return config
    dropped.append("config.seed")
    return {k: v for k, v in config.items() if k != "seed"}
def _read_config_yaml(folder: Path, dropped: list[str]) -> dict:
    """config.yaml read as a config is (bnexp.yamltext.parse_yaml: no aliases, no tags, at
    most 32 levels deep, integers of at most 64 bits; at most 64 KiB)."""
    try:
        config = parse_yaml(read_text(folder / "config.yaml", MAX_BYTES))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        raise ValueError("no readable config in summary.json or config.yaml") from None
    if not isinstance(config, dict):
        raise ValueError("config.yaml is not a mapping")
    config = _plain(config, "config.yaml ", dropped)
    if not _a_config(config):
        raise ValueError("no config with a name in summary.json or config.yaml")
    return config
