"""The exit-status policy, in one place: what each failure prints and which status it ends in.

0 success; 2 bad usage or a bad value (click's convention); 1 a runtime failure; 130
interrupted. Every failure is one line on stderr, sometimes followed by a hint.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import click

from convcalc.errors import ConvcalcError

USAGE = 2
RUNTIME = 1
INTERRUPTED = 130


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
    """Print the failure's message and hint on stderr."""
    if failure.message is not None:
        click.echo(f"Error: {failure.message}", err=True)
    if failure.hint:
        click.echo(failure.hint, err=True)


def _help_hint(ctx: click.Context | None) -> str | None:
    return None if ctx is None else f"Try '{ctx.command_path} --help' for help."
