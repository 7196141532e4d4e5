"""Errors that mean "the user's input is wrong" (exit code 2), as opposed to bugs, and
the "did you mean" hint their messages share."""

from __future__ import annotations

import difflib
import unicodedata


class BadInput(Exception):
    """Bad input: the message is one line naming the file and key; the CLI exits with 2.
    Several mistakes at once (a config's) are several messages, one line each:
    BadInput(line, line, ...), whose str() joins them with line breaks.

    The trap: messages quote what the user gave (a key, a value, a folder name), which may
    hold line breaks or terminal escapes; control characters are shown escaped (\\n), so
    each message stays one line whatever was quoted, and at most MAX_MESSAGE characters."""

    def __init__(self, message: str = "", *more: str):
        super().__init__(*(one_line(str(m)) for m in (message, *more)))

    def __str__(self) -> str:
        return "\n".join(self.args)


class ConfigError(BadInput):
    """A config file or override that does not fit the schema."""


class DataError(BadInput):
    """Dataset files that are missing, truncated or not in the expected format."""


MAX_MESSAGE = 2000


# what a terminal would act on rather than show: C0 and C1 controls, bidi overrides and
# other format characters, line and paragraph separators, lone surrogates
_UNSHOWABLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def one_line(text: str) -> str:
    """text with every character a terminal would act on escaped (a line break, an escape
    sequence, a right-to-left override), cut to MAX_MESSAGE characters in the middle: a
    message's end says what was expected ("expected one of ..."), its start where."""
    text = escaped(text)
    if len(text) <= MAX_MESSAGE:
        return text
    half = (MAX_MESSAGE - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def escaped(text: str) -> str:
    """text with every character a terminal would act on shown escaped, as repr shows it
    (\n, \x1b, \u202e); the rest as it is."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in _UNSHOWABLE else c
                   for c in text)


def did_you_mean(word: str, candidates: list[str]) -> str:
    """' (did you mean 'x'?)' for a near name, else ''. A candidate the word begins comes
    first (batch -> batch_size), else the closest by difflib."""
    prefixed = sorted((c for c in candidates if word and c.startswith(word)), key=len)
    close = prefixed[:1] or difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
