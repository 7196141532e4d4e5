"""Cooperative stopping on Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed).

The signal handler only sets a flag; the training loop checks it after every step
and raises KeyboardInterrupt from there, so the run records status "interrupted"
before the process ends. (Raising from the handler itself can land inside a
garbage-collector callback, where Python swallows the exception and training
carries on.) A second Ctrl-C raises at once.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

_requested = False


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested."""
    if _requested:
        raise KeyboardInterrupt("stop requested")


def request(signum=None, frame=None) -> None:
    global _requested
    if _requested and signum == signal.SIGINT:
        raise KeyboardInterrupt  # the second Ctrl-C: stop now
    _requested = True


@contextmanager
def handling(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
    """Within the block, the given signals request a stop; previous handlers come back
    after. A signal ignored already stays ignored (`nohup bnexp train ...` ignores SIGHUP:
    closing the terminal must not stop it)."""
    global _requested
    _requested = False
    signals = [s for s in signals if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, request) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = False
