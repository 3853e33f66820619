"""The exit-status policy, in one place: what each failure prints and which status it ends in.

0 success; 2 bad usage or a bad value (click's convention); 1 a runtime failure (a
missing or unreadable file, an unwritable output or stdout); 128 + the signal number
when a signal stops the command, the shell's convention: 130 interrupted (Ctrl-C,
SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP). Every failure is one line on
stderr, sometimes followed by a hint.
"""

from __future__ import annotations

import contextlib
import re
from typing import NamedTuple

import click

from convcalc.errors import ConvcalcError

USAGE = 2
RUNTIME = 1
INTERRUPTED = 130  # 128 + SIGINT


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised as an exception (by `convcalc.cli.main`) so that the
    command unwinds and cleans up (a write in progress removes its temporary file).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` stops it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Failure(NamedTuple):
    """How a command ended when it did not succeed."""

    message: str | None
    hint: str | None
    status: int


def failure_of(exc: BaseException) -> Failure | None:
    """The report of an exception, or None for one that is a bug (an internal error)."""
    if isinstance(exc, click.exceptions.Exit):
        return Failure(None, None, exc.exit_code)
    if isinstance(exc, click.NoSuchOption) and re.fullmatch(r"-\d[\dx.]*", exc.option_name):
        return Failure(
            f"'{exc.option_name}' is negative; sizes, kernels, strides and counts "
            "must be positive numbers",
            _help_hint(exc.ctx),
            USAGE,
        )
    if isinstance(exc, click.UsageError):
        return Failure(exc.format_message(), _help_hint(exc.ctx), USAGE)
    if isinstance(exc, ConvcalcError):
        return Failure(str(exc), exc.hint, exc.exit_code)
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return Failure("interrupted", None, INTERRUPTED)
    if isinstance(exc, Terminated):
        name = _signal_words().get(exc.signum, f"stopped by signal {exc.signum}")
        return Failure(name, None, 128 + exc.signum)
    if isinstance(exc, BrokenPipeError):
        return Failure(None, None, RUNTIME)
    if isinstance(exc, MemoryError):
        return Failure(
            "not enough memory for this input; try a smaller input or --gray", None, RUNTIME
        )
    return None


def internal_error(exc: BaseException) -> Failure:
    """An exception no rule expects: a bug, reported in one line with where to go next."""
    return Failure(
        f"internal error: {type(exc).__name__}: {exc}",
        "This is a bug; run again with --debug for the traceback and report it.",
        RUNTIME,
    )


def report(failure: Failure) -> None:
    """Print the failure's message and hint on stderr (if stderr can still be written:
    a hung-up terminal or a full disk may refuse it, and the status says the rest)."""
    with contextlib.suppress(OSError):
        if failure.message is not None:
            click.echo(f"Error: {failure.message}", err=True)
        if failure.hint:
            click.echo(failure.hint, err=True)


def _signal_words() -> dict[int, str]:
    import signal  # only when a signal stopped the command: start-up spares it

    return {
        getattr(signal, name): words
        for name, words in (("SIGTERM", "terminated (SIGTERM)"), ("SIGHUP", "hung up (SIGHUP)"))
        if hasattr(signal, name)
    }


def _help_hint(ctx: click.Context | None) -> str | None:
    return None if ctx is None else f"Try '{ctx.command_path} --help' for help."
