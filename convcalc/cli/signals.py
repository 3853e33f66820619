"""SIGTERM and SIGHUP as exceptions while a command runs, so that it unwinds: a write
in progress removes its temporary file, and the exit status is 128 + the signal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from convcalc.cli.status import Terminated

WRITING_COMMANDS = ("apply", "animate")


def writes_files(argv: Sequence[str]) -> bool:
    """True when the command line may write a file (``apply``, ``animate``, any ``-o``):
    only then are signals turned into exceptions, sparing `shape`'s start-up the cost."""
    return any(arg in WRITING_COMMANDS or arg.startswith(("-o", "--output")) for arg in argv)


@contextlib.contextmanager
def signals_raised(active: bool = True) -> Iterator[Callable[[], None]]:
    """SIGTERM and SIGHUP raise `Terminated` inside the block (when ``active``); yields a
    function that puts the previous handlers back (called again on leaving). The first
    signal makes the next ones ignored, so that the cleanup it starts runs to its end."""
    if not active:
        yield lambda: None
        return
    import signal

    stopping = [sig for sig in _stopping() if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.getsignal(sig) for sig in stopping}

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        for sig in stopping:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    try:
        for sig in stopping:
            signal.signal(sig, raise_terminated)
    except ValueError:  # not the main thread (an embedding program): signals are its own
        stopping, previous = [], {}
    try:
        yield restore
    finally:
        restore()


def _stopping() -> tuple[int, ...]:
    import signal

    return tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
